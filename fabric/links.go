package fabric

import (
	"sort"
	"time"

	"github.com/swrap/swrap/addrplan"
	"github.com/swrap/swrap/netem"
	"github.com/swrap/swrap/tap"
)

// linkTable says which frames take a shaped Port: ports[src][dst] is the
// Port of host dst that frames from src go through when a condition applies
// to them, nil otherwise. A table is immutable once stored; changes build a
// new one.
type linkTable struct {
	ports [addrplan.MaxHost + 1][addrplan.MaxHost + 1]*tap.Port
}

// shaped returns the Port frames from src to dst take, or nil when no
// condition applies. It is on the TX path: with no conditions anywhere it
// is one atomic load and a nil check.
func (f *Fabric) shaped(src, dst int) *tap.Port {
	if t := f.links.Load(); t != nil && src <= addrplan.MaxHost && dst <= addrplan.MaxHost {
		return t.ports[src][dst]
	}
	return nil
}

// shaper hands a shaped Port's frames to its netem.Link.
type shaper struct{ l *netem.Link }

// Divert implements tap.Shaper.
func (s shaper) Divert(out *tap.Port, parts [][]byte) { s.l.Enqueue(out, parts) }

// linkCapture is the netem.Config.Capture of new links.
func (f *Fabric) linkCapture() func(time.Time, [][]byte, netem.Note) {
	if f.cfg.LinkCapture != nil {
		return f.cfg.LinkCapture
	}
	if c := f.cfg.Capture; c != nil {
		return func(ts time.Time, parts [][]byte, n netem.Note) {
			if n.Drop == "" {
				c(ts, parts)
			}
		}
	}
	return nil
}

// SetLinks applies network conditions: each rule replaces the conditions of
// its selector (a zero Spec removes them, letting the frames the link holds
// arrive), after clearing every link if r.ClearAll. A link keeps its queue,
// PRNG and counters when its conditions change.
func (f *Fabric) SetLinks(r netem.Rules) {
	f.linkMu.Lock()
	defer f.linkMu.Unlock()
	if f.linksClosed {
		return
	}
	if r.ClearAll {
		for sel, l := range f.rules {
			l.Retire()
			delete(f.rules, sel)
		}
	}
	for _, rule := range r.Rules {
		l := f.rules[rule.Sel]
		switch {
		case rule.Spec.IsZero():
			if l != nil {
				l.Retire()
				delete(f.rules, rule.Sel)
			}
		case l != nil:
			l.Set(rule.Spec)
		default:
			if f.rules == nil {
				f.rules = make(map[netem.Selector]*netem.Link)
			}
			f.rules[rule.Sel] = netem.NewLink(netem.Config{
				Sel: rule.Sel, Capture: f.linkCapture(), Events: f.cfg.Events,
			}, rule.Spec)
		}
	}
	f.rebuildLinksLocked()
}

// Links returns every link with conditions, ordered by source then
// destination (0, "any", first).
func (f *Fabric) Links() []netem.Status {
	f.linkMu.Lock()
	links := make([]*netem.Link, 0, len(f.rules))
	for _, l := range f.rules {
		links = append(links, l)
	}
	f.linkMu.Unlock()
	sort.Slice(links, func(i, j int) bool {
		a, b := links[i].Selector(), links[j].Selector()
		if a.Src != b.Src {
			return a.Src < b.Src
		}
		return a.Dst < b.Dst
	})
	out := make([]netem.Status, len(links))
	for i, l := range links {
		out[i] = l.Status()
	}
	return out
}

// rebuildLinks recomputes the link table, as when a host appears: the
// table holds Ports of existing hosts only.
func (f *Fabric) rebuildLinks() {
	f.linkMu.Lock()
	f.rebuildLinksLocked()
	f.linkMu.Unlock()
}

// rebuildLinksLocked stores the table for the current rules and hosts; a
// frame from src to dst takes the rule of src->dst, else src->*, else
// *->dst. Called with linkMu held.
func (f *Fabric) rebuildLinksLocked() {
	if len(f.rules) == 0 {
		f.links.Store(nil)
		return
	}
	t := &linkTable{}
	type key struct {
		l   *netem.Link
		dst int
	}
	ports := make(map[key]*tap.Port)
	for dst := 1; dst <= addrplan.MaxHost; dst++ {
		n := f.nodes[dst].Load()
		if n == nil {
			continue
		}
		for src := 1; src <= addrplan.MaxHost; src++ {
			if src == dst {
				continue
			}
			l := f.rules[netem.Selector{Src: src, Dst: dst}]
			if l == nil {
				l = f.rules[netem.Selector{Src: src}]
			}
			if l == nil {
				l = f.rules[netem.Selector{Dst: dst}]
			}
			if l == nil {
				continue
			}
			k := key{l, dst}
			p := ports[k]
			if p == nil {
				p = f.in(n).Shaped(shaper{l})
				ports[k] = p
			}
			t.ports[src][dst] = p
		}
	}
	f.links.Store(t)
}

// closeLinks stops every link, discarding what they hold; frames offered
// afterwards are dropped. Called by Close once the ports are closed, so
// that no link is parked sending.
func (f *Fabric) closeLinks() {
	f.linkMu.Lock()
	f.linksClosed = true
	f.links.Store(nil)
	rules := f.rules
	f.rules = nil
	f.linkMu.Unlock()
	for _, l := range rules {
		l.Close()
	}
}
