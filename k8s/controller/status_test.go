package controller

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	agwv1 "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/translate"
)

func find(t *testing.T, cs []metav1.Condition, typ string) metav1.Condition {
	t.Helper()
	for _, c := range cs {
		if c.Type == typ {
			return c
		}
	}
	t.Fatalf("no %s in %+v", typ, cs)
	return metav1.Condition{}
}

func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		kind                           string
		errs                           []*translate.ObjectError
		served                         translate.Served
		activate                       error
		accepted, resolved, programmed string // reasons
	}{
		{"valid", "AgentgatewayPolicy", nil, translate.ServedCurrent, nil, "Accepted", "ResolvedRefs", "Programmed"},
		{"invalid, last good", "AgentgatewayPolicy", []*translate.ObjectError{{Field: "spec.x", Msg: "bad"}}, translate.ServedLastGood, nil, "Invalid", "ResolvedRefs", "LastGoodServed"},
		{"dangling target", "AgentgatewayPolicy", []*translate.ObjectError{{Field: "spec.targetRefs[0].name", Msg: "HTTPRoute ns/x not found", Ref: "HTTPRoute ns/x"}}, translate.ServedNone, nil, "Accepted", "RefNotFound", "NotServed"},
		{"route without backend", "HTTPRoute", []*translate.ObjectError{{Msg: "not found", Ref: "AgentgatewayBackend ns/b"}}, translate.ServedNone, nil, "Accepted", "BackendNotFound", "NotServed"},
		{"route without parent", "HTTPRoute", []*translate.ObjectError{{Msg: "not found", Ref: "Gateway ns/g"}}, translate.ServedNone, nil, "NoMatchingParent", "BackendNotFound", "NotServed"},
		{"activation failed", "AgentgatewayBackend", nil, translate.ServedCurrent, errors.New("boom"), "Accepted", "ResolvedRefs", "Pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := conditions(tc.kind, 7, tc.errs, tc.served, tc.activate)
			for typ, reason := range map[string]string{"Accepted": tc.accepted, "ResolvedRefs": tc.resolved, "Programmed": tc.programmed} {
				c := find(t, cs, typ)
				want := metav1.ConditionTrue
				if reason != typ {
					want = metav1.ConditionFalse
				}
				if c.Reason != reason || c.Status != want || c.ObservedGeneration != 7 {
					t.Errorf("%s = %s/%s gen %d, want %s/%s gen 7", typ, c.Status, c.Reason, c.ObservedGeneration, want, reason)
				}
			}
			if len(tc.errs) > 0 && tc.errs[0].Field != "" && !strings.Contains(find(t, cs, "Accepted").Message+find(t, cs, "ResolvedRefs").Message, tc.errs[0].Field) {
				t.Errorf("messages do not name the field: %+v", cs)
			}
		})
	}
}

// Writing the same conditions twice changes nothing (replicas that agree
// write nothing); a different generation does.
func TestSetAncestorsIdempotent(t *testing.T) {
	var st gwv1.PolicyStatus
	refs := []agwv1.LocalPolicyTargetReferenceWithSectionName{{Group: gwv1.GroupName, Kind: "HTTPRoute", Name: "r"}}
	want := conditions("AgentgatewayPolicy", 1, nil, translate.ServedCurrent, nil)
	if !setAncestors(&st, "ns", refs, DefaultControllerName, want) {
		t.Fatal("first write reported no change")
	}
	// Another controller's entry is kept.
	st.Ancestors = append(st.Ancestors, gwv1.PolicyAncestorStatus{ControllerName: "other.dev/x", AncestorRef: gwv1.ParentReference{Name: "g"}})
	if setAncestors(&st, "ns", refs, DefaultControllerName, conditions("AgentgatewayPolicy", 1, nil, translate.ServedCurrent, nil)) {
		t.Fatal("identical write reported a change")
	}
	if len(st.Ancestors) != 2 {
		t.Fatalf("ancestors %+v", st.Ancestors)
	}
	if !setAncestors(&st, "ns", refs, DefaultControllerName, conditions("AgentgatewayPolicy", 2, nil, translate.ServedCurrent, nil)) {
		t.Fatal("new generation reported no change")
	}
	if !setAncestors(&st, "ns", nil, DefaultControllerName, want) || len(st.Ancestors) != 1 || st.Ancestors[0].ControllerName != "other.dev/x" {
		t.Fatalf("dropping the target: %+v", st.Ancestors)
	}
}
