package swrapnet

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/wire"
)

// SetLinks sets network conditions on the broker's fabric, in the grammar
// of netem.Parse: "10->11 delay=50ms loss=5%", "10-11 partition", "10-11"
// (heal: no conditions), "clear" (no conditions anywhere). They apply to
// the whole network, not only to this host, from the next frame on. The
// text is checked here first, so that a mistake comes back with the
// parser's message.
func (h *Host) SetLinks(rules string) error {
	if _, err := netem.Parse(rules); err != nil {
		return err
	}
	rep, _, err := h.call(wire.OpSetLink, 0, []byte(rules))
	if err != nil {
		if len(rep.Body) > 0 {
			return fmt.Errorf("swrapnet: SETLINK: %s: %w", rep.Body, err)
		}
		return fmt.Errorf("swrapnet: SETLINK: %w", err)
	}
	return nil
}

// Links returns the links that have conditions, with their counters.
func (h *Host) Links() ([]netem.Status, error) {
	doc, err := h.doc(wire.OpGetLinks)
	if err != nil {
		return nil, fmt.Errorf("swrapnet: GETLINKS: %w", err)
	}
	var out []netem.Status
	if err := json.Unmarshal(doc, &out); err != nil {
		return nil, errors.New("swrapnet: GETLINKS: the reply is not a list of links")
	}
	return out, nil
}
