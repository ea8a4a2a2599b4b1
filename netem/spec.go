package netem

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxHost is the largest host id a selector may name (addrplan.MaxHost;
// repeated here so that the package depends on nothing of the fabric).
const MaxHost = 64

// DefaultQueue is the queue limit, in frames, of a link whose Spec sets
// none: Linux netem's default limit.
const DefaultQueue = 1000

// Dist is the distribution of the jitter added to a delay.
type Dist uint8

const (
	// Uniform jitter is drawn uniformly from [-Jitter, +Jitter].
	Uniform Dist = iota
	// Normal jitter is drawn from a normal distribution of standard
	// deviation Jitter, cut at ±4 standard deviations so that one unlucky
	// draw cannot hold a frame for seconds.
	Normal
)

func (d Dist) String() string {
	if d == Normal {
		return "normal"
	}
	return "uniform"
}

// GilbertElliott is a two-state bursty loss model: the link is either good
// or bad, moves from good to bad with probability P and back with
// probability R at every frame, and loses a frame with probability LossBad
// in the bad state and LossGood in the good one. Bursts are 1/R frames long
// on average. The zero value (P 0) is off.
type GilbertElliott struct {
	P, R              float64
	LossBad, LossGood float64
}

// Spec is what a link does to its frames. The zero Spec does nothing.
// Probabilities are fractions in [0, 1].
type Spec struct {
	// Delay is added to every frame (after the rate limit's queue).
	Delay time.Duration
	// Jitter varies the delay, per frame, with distribution Dist; the
	// delay is never below 0. As with Linux netem, jitter may reorder
	// frames: a frame whose draw is small overtakes one whose draw was
	// large.
	Jitter time.Duration
	Dist   Dist
	// Loss is the probability that a frame is lost (independently).
	Loss float64
	// GE, if GE.P > 0, adds bursty loss.
	GE GilbertElliott
	// Dup is the probability that a frame is sent twice.
	Dup float64
	// Reorder is the probability that a frame skips the delay and goes
	// ahead of the delayed frames before it (Linux netem's reorder; it
	// needs a Delay to have an effect).
	Reorder float64
	// Rate, in bits per second, limits the link's throughput; 0 is
	// unlimited. Frames wait in a FIFO queue for the link to be free.
	Rate uint64
	// Queue bounds the frames a link holds (waiting for the rate limit or
	// for their delay); a frame beyond it is dropped (tail drop). 0 means
	// DefaultQueue.
	Queue int
	// Partition drops every frame, until the Spec is replaced (healed).
	Partition bool
	// Seed seeds the link's PRNG when HasSeed is set; otherwise each link
	// gets a random seed and runs are not reproducible.
	Seed    uint64
	HasSeed bool
}

// IsZero reports whether s does nothing at all (a rule with this Spec
// removes a link's conditions).
func (s Spec) IsZero() bool { return s == Spec{} }

// QueueLimit is Queue, or DefaultQueue when Queue is 0.
func (s Spec) QueueLimit() int {
	if s.Queue > 0 {
		return s.Queue
	}
	return DefaultQueue
}

// String returns s in the grammar Parse reads (options only), in a fixed
// order, so that it can be shown and parsed back.
func (s Spec) String() string {
	var b []string
	if s.Partition {
		b = append(b, "partition")
	}
	if s.Delay != 0 {
		b = append(b, "delay="+s.Delay.String())
	}
	if s.Jitter != 0 {
		b = append(b, "jitter="+s.Jitter.String())
		if s.Dist != Uniform {
			b = append(b, "dist="+s.Dist.String())
		}
	}
	if s.Loss != 0 {
		b = append(b, "loss="+pct(s.Loss))
	}
	if s.GE.P != 0 {
		b = append(b, fmt.Sprintf("ge=%s,%s,%s,%s", pct(s.GE.P), pct(s.GE.R), pct(s.GE.LossBad), pct(s.GE.LossGood)))
	}
	if s.Dup != 0 {
		b = append(b, "dup="+pct(s.Dup))
	}
	if s.Reorder != 0 {
		b = append(b, "reorder="+pct(s.Reorder))
	}
	if s.Rate != 0 {
		b = append(b, "rate="+rateString(s.Rate))
	}
	if s.Queue != 0 {
		b = append(b, "queue="+strconv.Itoa(s.Queue))
	}
	if s.HasSeed {
		b = append(b, "seed="+strconv.FormatUint(s.Seed, 10))
	}
	return strings.Join(b, " ")
}

func pct(p float64) string { return strconv.FormatFloat(p*100, 'g', -1, 64) + "%" }

func rateString(r uint64) string {
	for _, u := range []struct {
		name string
		n    uint64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if r >= u.n && r%u.n == 0 {
			return strconv.FormatUint(r/u.n, 10) + u.name
		}
	}
	return strconv.FormatUint(r, 10) + "bit"
}

// Selector names the frames a Spec applies to, by source and destination
// host id; 0 means any host. {A, B} is the link from A to B, {A, 0} all
// that A sends, {0, B} all that B receives.
type Selector struct {
	Src, Dst int
}

// String returns the selector as Parse reads it: "10->11", "10->*",
// "*->11".
func (s Selector) String() string {
	h := func(id int) string {
		if id == 0 {
			return "*"
		}
		return strconv.Itoa(id)
	}
	return h(s.Src) + "->" + h(s.Dst)
}

// Rule sets the Spec of one selector; a zero Spec removes its conditions.
type Rule struct {
	Sel  Selector
	Spec Spec
}

// Rules is what Parse returns: the rules in order, and whether the text
// asked first to clear every link.
type Rules struct {
	// ClearAll: the text held the rule "clear"; the rules after it apply
	// to a network without conditions.
	ClearAll bool
	Rules    []Rule
}

// Parse reads network conditions. The grammar:
//
//	conditions = rule { (";" | newline) rule }    empty rules and "# comments" are skipped
//	rule       = "clear" | selector { option }     fields separated by blanks
//	selector   = A "->" B | A "<-" B | A "<->" B | A "-" B | A "->*" | "*->" A | A
//	option     = "partition"
//	           | "delay=" DURATION | "jitter=" DURATION | "dist=" ("uniform" | "normal")
//	           | "loss=" PROB | "ge=" PROB "," PROB [ "," PROB [ "," PROB ] ]
//	           | "dup=" PROB | "reorder=" PROB
//	           | "rate=" NUMBER ("bit" | "kbit" | "mbit" | "gbit")
//	           | "queue=" FRAMES | "seed=" UINT64
//	PROB       = NUMBER "%" | a fraction 0..1
//
// A and B are host ids 1..64. "A->B" is the link from A to B; "A<->B" and
// "A-B" are both directions, each with its own state (queue, PRNG,
// counters); "A->*" is all that A sends, "*->A" all that A receives, and
// "A" both. A frame from A to B gets the conditions of "A->B" if set, else
// of "A->*", else of "*->B": one set, never several stacked.
//
// "ge=P,R,LB,LG" is Gilbert-Elliott loss: move to the bad state with
// probability P, back with R, lose with LB in the bad state (default 100%)
// and LG in the good one (default 0%). DURATION is Go's (50ms, 1.5s).
// Rates are decimal bits per second. A rule with no options removes its
// selector's conditions; "clear" removes every link's.
//
// Examples:
//
//	10->11 delay=50ms jitter=5ms dist=normal loss=5% seed=42
//	10-11 partition
//	11 rate=10mbit queue=100; 12->* ge=1%,25%
func Parse(text string) (Rules, error) {
	var out Rules
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, r := range strings.Split(line, ";") {
			f := strings.Fields(r)
			if len(f) == 0 {
				continue
			}
			if len(f) == 1 && f[0] == "clear" {
				out.ClearAll = true
				out.Rules = nil
				continue
			}
			sels, err := parseSelector(f[0])
			if err != nil {
				return Rules{}, err
			}
			spec, err := parseOptions(f[1:])
			if err != nil {
				return Rules{}, fmt.Errorf("netem: %s: %w", f[0], err)
			}
			for _, s := range sels {
				out.Rules = append(out.Rules, Rule{Sel: s, Spec: spec})
			}
		}
	}
	return out, nil
}

// parseSelector reads a selector and expands it into one Selector per
// direction.
func parseSelector(s string) ([]Selector, error) {
	bad := func() ([]Selector, error) {
		return nil, fmt.Errorf("netem: %q is not a link (A->B, A<-B, A<->B, A-B, A->*, *->A or A, with host ids 1..%d)", s, MaxHost)
	}
	for _, sep := range []string{"<->", "->", "<-", "-"} {
		a, b, ok := strings.Cut(s, sep)
		if !ok {
			continue
		}
		src, err1 := hostID(a, true)
		dst, err2 := hostID(b, true)
		if err1 != nil || err2 != nil || src == 0 && dst == 0 || src == dst {
			return bad()
		}
		switch sep {
		case "->":
			return []Selector{{src, dst}}, nil
		case "<-":
			return []Selector{{dst, src}}, nil
		}
		if src == 0 || dst == 0 {
			return bad() // "*<->A" would mean "A", said oddly: refuse it
		}
		return []Selector{{src, dst}, {dst, src}}, nil
	}
	id, err := hostID(s, false)
	if err != nil {
		return bad()
	}
	return []Selector{{id, 0}, {0, id}}, nil
}

func hostID(s string, star bool) (int, error) {
	if star && s == "*" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxHost {
		return 0, errors.New("bad host id")
	}
	return n, nil
}

// parseOptions reads the options of one rule into a Spec.
func parseOptions(opts []string) (Spec, error) {
	var s Spec
	seen := map[string]bool{}
	for _, o := range opts {
		k, v, hasV := strings.Cut(o, "=")
		if seen[k] {
			return Spec{}, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		if k == "partition" {
			if hasV {
				return Spec{}, errors.New("partition takes no value (a rule without it heals the link)")
			}
			s.Partition = true
			continue
		}
		if !hasV || v == "" {
			return Spec{}, fmt.Errorf("%q needs a value (%s=...)", k, k)
		}
		var err error
		switch k {
		case "delay":
			s.Delay, err = duration(v)
		case "jitter":
			s.Jitter, err = duration(v)
		case "dist":
			switch v {
			case "uniform":
				s.Dist = Uniform
			case "normal":
				s.Dist = Normal
			default:
				err = errors.New("is uniform or normal")
			}
		case "loss":
			s.Loss, err = prob(v)
		case "dup":
			s.Dup, err = prob(v)
		case "reorder":
			s.Reorder, err = prob(v)
		case "ge":
			s.GE, err = parseGE(v)
		case "rate":
			s.Rate, err = parseRate(v)
		case "queue":
			s.Queue, err = strconv.Atoi(v)
			if err == nil && s.Queue < 1 {
				err = errors.New("is at least 1 frame")
			}
		case "seed":
			s.Seed, err = strconv.ParseUint(v, 10, 64)
			s.HasSeed = true
		default:
			return Spec{}, fmt.Errorf("unknown option %q (partition, delay, jitter, dist, loss, ge, dup, reorder, rate, queue, seed)", k)
		}
		if err != nil {
			return Spec{}, fmt.Errorf("%s=%s: %v", k, v, err)
		}
	}
	if s.Jitter > 0 && s.Delay == 0 {
		return Spec{}, errors.New("jitter needs a delay")
	}
	return s, nil
}

func duration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("is a duration such as 50ms")
	}
	if d < 0 || d > time.Hour {
		return 0, errors.New("is out of range 0..1h")
	}
	return d, nil
}

// prob reads "5%" or "0.05".
func prob(v string) (float64, error) {
	num, isPct := strings.CutSuffix(v, "%")
	p, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(p) {
		return 0, errors.New("is a probability such as 5% or 0.05")
	}
	if isPct {
		p /= 100
	}
	if p < 0 || p > 1 {
		return 0, errors.New("is out of range 0..100%")
	}
	return p, nil
}

func parseGE(v string) (GilbertElliott, error) {
	parts := strings.Split(v, ",")
	if len(parts) < 2 || len(parts) > 4 {
		return GilbertElliott{}, errors.New("is P,R[,LOSS_BAD[,LOSS_GOOD]]")
	}
	g := GilbertElliott{LossBad: 1}
	for i, ptr := range []*float64{&g.P, &g.R, &g.LossBad, &g.LossGood}[:len(parts)] {
		p, err := prob(parts[i])
		if err != nil {
			return GilbertElliott{}, err
		}
		*ptr = p
	}
	if g.P == 0 {
		return GilbertElliott{}, errors.New("the chance of going bad (P) must be above 0")
	}
	return g, nil
}

// parseRate reads a decimal rate in bits per second with a unit.
func parseRate(v string) (uint64, error) {
	l := strings.TrimSuffix(strings.ToLower(v), "/s")
	for _, u := range []struct {
		name string
		mult float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		num, ok := strings.CutSuffix(l, u.name)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f <= 0 || f*u.mult < 8 || f*u.mult > 1e12 {
			break
		}
		return uint64(math.Round(f * u.mult)), nil
	}
	return 0, errors.New("is a rate such as 10mbit (bit, kbit, mbit, gbit per second)")
}
