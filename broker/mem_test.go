package broker

import (
	"testing"
	"time"
)

func TestMemRelease(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name        string
		quiet, next time.Duration
		before, now uint64
		want        release
	}{
		{"schedule not yet due", 3 * s, 4 * s, 0, 0, releaseNot},
		{"schedule due", 4 * s, 4 * s, 10, 10, releaseScheduled},
		{"schedule wins over closing", 40 * s, 37 * s, 2000, 0, releaseScheduled},
		{"TIME_WAIT emptied between releases", 61 * s, 62 * s, 2000, 0, releaseClosing},
		{"many closed between releases", 50 * s, 52 * s, 2000, 1700, releaseClosing},
		{"a few closed", 50 * s, 52 * s, 2000, 1900, releaseNot},
		{"last few closed", 50 * s, 52 * s, 3, 0, releaseClosing},
		{"more closing", 50 * s, 52 * s, 100, 400, releaseNot},
		{"nothing to give back", 61 * s, 62 * s, 0, 0, releaseNot},
		{"past the schedule, nothing closed", 10 * time.Minute, memLast + s, 5, 5, releaseNot},
		{"past the schedule, TIME_WAIT emptied", 10 * time.Minute, memLast + s, 5, 0, releaseClosing},
	} {
		if got := memRelease(tc.quiet, tc.next, tc.before, tc.now); got != tc.want {
			t.Errorf("%s: memRelease(%v, %v, %d, %d) = %d, want %d", tc.name, tc.quiet, tc.next, tc.before, tc.now, got, tc.want)
		}
	}
}
