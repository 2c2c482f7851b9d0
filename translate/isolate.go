package translate

import (
	"errors"
	"fmt"
)

// Served says which version of an object a translation used.
type Served int

// The versions an object can be served at.
const (
	// ServedCurrent: the object as it is now.
	ServedCurrent Served = iota
	// ServedLastGood: the current version is invalid; the last version that
	// translated cleanly is served instead.
	ServedLastGood
	// ServedNone: the current version is invalid and there is no usable
	// last good version; the object is left out.
	ServedNone
)

func (s Served) String() string {
	switch s {
	case ServedCurrent:
		return "current"
	case ServedLastGood:
		return "last good"
	default:
		return "none"
	}
}

// Isolation reports, per object, what TranslateIsolated did.
type Isolation struct {
	// Errors lists the problems of each object's current version, by
	// ObjectID. Objects without problems are absent.
	Errors map[string][]*ObjectError
	// Served says which version of each object with problems was used.
	// Objects absent from it were served at their current version.
	Served map[string]Served
	// Used holds the objects the result was translated from: the current
	// version of each valid object and the last good version of each
	// invalid one that has one; the next call's lastGood.
	Used *Resources
}

// TranslateIsolated translates res so that an invalid object affects only
// itself. Where Translate reports problems, the object at fault is replaced
// by its version in lastGood (the objects of the last clean translation, may
// be nil) or, if it has none or that version fails too, left out; then the
// translation is repeated until it is clean. The result therefore never
// contains a partly translated object, and an edit that breaks an object
// that used to work leaves its previous behaviour in force: an
// authentication or authorization policy cannot disappear by being broken.
//
// A problem caused only by another invalid object (a route whose backend is
// invalid) is not held against the referring object while the other one is
// being replaced. Services are always used as they are.
//
// The returned error is non-nil only if the repetition did not converge,
// which would be a bug.
func TranslateIsolated(res, lastGood *Resources) (*Result, *Isolation, error) {
	if lastGood == nil {
		lastGood = &Resources{}
	}
	iso := &Isolation{Errors: map[string][]*ObjectError{}, Served: map[string]Served{}}
	last := index(lastGood)
	for {
		iso.Used = choose(res, lastGood, iso.Served)
		out, err := Translate(iso.Used)
		if err == nil {
			return out, iso, nil
		}
		byID := map[string][]*ObjectError{}
		independent := false
		for _, e := range flatten(err) {
			var oe *ObjectError
			if !errors.As(e, &oe) {
				return nil, nil, fmt.Errorf("%w: unattributed problem: %v", ErrTranslate, e)
			}
			id := ObjectID(oe.Kind, oe.Namespace, oe.Name)
			byID[id] = append(byID[id], oe)
			if !oe.RefInvalid {
				independent = true
			}
		}
		changed := false
		for id, errs := range byID {
			if independent && onlyRefInvalid(errs) {
				continue // wait until the referenced object is replaced
			}
			switch iso.Served[id] {
			case ServedCurrent:
				iso.Errors[id] = errs
				if _, ok := last[id]; ok {
					iso.Served[id] = ServedLastGood
				} else {
					iso.Served[id] = ServedNone
				}
				changed = true
			case ServedLastGood:
				iso.Served[id] = ServedNone
				changed = true
			}
		}
		if !changed {
			return out, iso, fmt.Errorf("%w: isolating invalid objects did not converge: %v", ErrTranslate, err)
		}
	}
}

func onlyRefInvalid(errs []*ObjectError) bool {
	for _, e := range errs {
		if !e.RefInvalid {
			return false
		}
	}
	return true
}

// flatten undoes errors.Join.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

type named interface {
	GetNamespace() string
	GetName() string
}

// index lists the ObjectIDs of the objects Translate checks.
func index(r *Resources) map[string]bool {
	out := map[string]bool{}
	add := func(kind string, objs []named) {
		for _, o := range objs {
			out[ObjectID(kind, o.GetNamespace(), o.GetName())] = true
		}
	}
	add("Gateway", asNamed(r.Gateways))
	add("HTTPRoute", asNamed(r.HTTPRoutes))
	add("AgentgatewayBackend", asNamed(r.Backends))
	add("AgentgatewayPolicy", asNamed(r.Policies))
	add("MCPRegoPolicy", asNamed(r.RegoPolicies))
	add("MCPRateLimitPolicy", asNamed(r.RateLimitPolicies))
	return out
}

func asNamed[T named](in []T) []named {
	out := make([]named, len(in))
	for i, o := range in {
		out[i] = o
	}
	return out
}

// choose builds the resources to translate: each object of cur at the
// version served says.
func choose(cur, last *Resources, served map[string]Served) *Resources {
	r := *cur
	r.Gateways = pick("Gateway", cur.Gateways, last.Gateways, served)
	r.HTTPRoutes = pick("HTTPRoute", cur.HTTPRoutes, last.HTTPRoutes, served)
	r.Backends = pick("AgentgatewayBackend", cur.Backends, last.Backends, served)
	r.Policies = pick("AgentgatewayPolicy", cur.Policies, last.Policies, served)
	r.RegoPolicies = pick("MCPRegoPolicy", cur.RegoPolicies, last.RegoPolicies, served)
	r.RateLimitPolicies = pick("MCPRateLimitPolicy", cur.RateLimitPolicies, last.RateLimitPolicies, served)
	return &r
}

func pick[T named](kind string, cur, last []T, served map[string]Served) []T {
	if len(served) == 0 {
		return cur
	}
	var lastByID map[string]T
	out := make([]T, 0, len(cur))
	for _, o := range cur {
		id := ObjectID(kind, o.GetNamespace(), o.GetName())
		switch served[id] {
		case ServedCurrent:
			out = append(out, o)
		case ServedLastGood:
			if lastByID == nil {
				lastByID = map[string]T{}
				for _, l := range last {
					lastByID[ObjectID(kind, l.GetNamespace(), l.GetName())] = l
				}
			}
			if l, ok := lastByID[id]; ok {
				out = append(out, l)
			}
		}
	}
	return out
}
