package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	agwv1 "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/translate"
)

// Condition types and reasons written by the controller.
const (
	CondAccepted     = "Accepted"
	CondResolvedRefs = "ResolvedRefs"
	CondProgrammed   = "Programmed"

	ReasonAccepted         = "Accepted"
	ReasonInvalid          = "Invalid"
	ReasonResolvedRefs     = "ResolvedRefs"
	ReasonRefNotFound      = "RefNotFound"
	ReasonBackendNotFound  = "BackendNotFound"
	ReasonNoMatchingParent = "NoMatchingParent"
	ReasonProgrammed       = "Programmed"
	ReasonLastGoodServed   = "LastGoodServed"
	ReasonNotServed        = "NotServed"
	ReasonPending          = "Pending"
)

const maxMessage = 32 << 10 // metav1.Condition.Message limit

// conditions derives the three conditions of one object from what
// translation reported about it.
func conditions(kind string, gen int64, errs []*translate.ObjectError, served translate.Served, activateErr error) []metav1.Condition {
	var invalid, refs []string
	refToParent := false
	for _, e := range errs {
		m := e.Msg
		if e.Field != "" {
			m = e.Field + ": " + e.Msg
		}
		if e.Ref != "" {
			refs = append(refs, m)
			if strings.HasPrefix(e.Ref, "Gateway ") && kind == "HTTPRoute" {
				refToParent = true
			}
		} else {
			invalid = append(invalid, m)
		}
	}
	mk := func(t string, ok bool, reason, msg string) metav1.Condition {
		st := metav1.ConditionTrue
		if !ok {
			st = metav1.ConditionFalse
		}
		if len(msg) > maxMessage {
			msg = msg[:maxMessage-3] + "..."
		}
		return metav1.Condition{Type: t, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen}
	}
	var out []metav1.Condition
	switch {
	case len(invalid) > 0:
		out = append(out, mk(CondAccepted, false, ReasonInvalid, strings.Join(invalid, "; ")))
	case refToParent:
		out = append(out, mk(CondAccepted, false, ReasonNoMatchingParent, strings.Join(refs, "; ")))
	default:
		out = append(out, mk(CondAccepted, true, ReasonAccepted, "valid"))
	}
	if len(refs) > 0 {
		reason := ReasonRefNotFound
		if kind == "HTTPRoute" {
			reason = ReasonBackendNotFound
		}
		out = append(out, mk(CondResolvedRefs, false, reason, strings.Join(refs, "; ")))
	} else {
		out = append(out, mk(CondResolvedRefs, true, ReasonResolvedRefs, "all references resolved"))
	}
	switch {
	case activateErr != nil:
		out = append(out, mk(CondProgrammed, false, ReasonPending, "the new configuration could not be activated and the previous bundle keeps serving: "+activateErr.Error()))
	case served == translate.ServedLastGood:
		out = append(out, mk(CondProgrammed, false, ReasonLastGoodServed, "this generation is invalid; the last valid version of this object keeps serving"))
	case served == translate.ServedNone:
		out = append(out, mk(CondProgrammed, false, ReasonNotServed, "this generation is invalid and no valid version exists; the object is not served"))
	default:
		out = append(out, mk(CondProgrammed, true, ReasonProgrammed, "served by the active bundle"))
	}
	return out
}

// setConditions merges want into have (keeping LastTransitionTime when the
// status did not change) and reports whether anything changed.
func setConditions(have *[]metav1.Condition, want []metav1.Condition) bool {
	changed := false
	for _, c := range want {
		old := meta.FindStatusCondition(*have, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message && old.ObservedGeneration == c.ObservedGeneration {
			continue
		}
		meta.SetStatusCondition(have, c)
		changed = true
	}
	return changed
}

func (c *Controller) writeStatus(ctx context.Context, snap *snapshot, iso *translate.Isolation, activateErr error) error {
	if iso == nil {
		iso = &translate.Isolation{}
	}
	var errs []error
	patch := func(obj client.Object, mutate func() bool) {
		orig := obj.DeepCopyObject().(client.Object)
		if !mutate() {
			return
		}
		if err := c.client.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName(), err))
		}
	}
	conds := func(kind string, o metav1.Object) []metav1.Condition {
		id := translate.ObjectID(kind, o.GetNamespace(), o.GetName())
		return conditions(kind, o.GetGeneration(), iso.Errors[id], iso.Served[id], activateErr)
	}
	ctrlName := gwv1.GatewayController(c.opts.ControllerName)

	for i := range snap.classes {
		gc := &snap.classes[i]
		patch(gc, func() bool {
			return setConditions(&gc.Status.Conditions, []metav1.Condition{{
				Type: string(gwv1.GatewayClassConditionStatusAccepted), Status: metav1.ConditionTrue,
				Reason: string(gwv1.GatewayClassReasonAccepted), Message: "handled by " + c.opts.ControllerName, ObservedGeneration: gc.Generation,
			}})
		})
	}
	for _, g := range snap.res.Gateways {
		want := conds("Gateway", g)
		// Gateways have Accepted and Programmed (no ResolvedRefs).
		want = []metav1.Condition{want[0], want[2]}
		patch(g, func() bool { return setConditions(&g.Status.Conditions, want) })
	}
	for _, r := range snap.res.HTTPRoutes {
		want := conds("HTTPRoute", r)
		patch(r, func() bool {
			changed := false
			for _, pr := range r.Spec.ParentRefs {
				ps := parentStatus(&r.Status.Parents, pr, ctrlName)
				if setConditions(&ps.Conditions, want) {
					changed = true
				}
			}
			return changed
		})
	}
	for _, b := range snap.res.Backends {
		want := conds("AgentgatewayBackend", b)
		patch(b, func() bool { return setConditions(&b.Status.Conditions, want) })
	}
	for _, p := range snap.res.Policies {
		want := conds("AgentgatewayPolicy", p)
		patch(p, func() bool { return setAncestors(&p.Status, p.Namespace, p.Spec.TargetRefs, ctrlName, want) })
	}
	for _, p := range snap.res.RegoPolicies {
		want := conds("MCPRegoPolicy", p)
		patch(p, func() bool { return setAncestors(&p.Status, p.Namespace, p.Spec.TargetRefs, ctrlName, want) })
	}
	for _, p := range snap.res.RateLimitPolicies {
		want := conds("MCPRateLimitPolicy", p)
		patch(p, func() bool { return setAncestors(&p.Status, p.Namespace, p.Spec.TargetRefs, ctrlName, want) })
	}
	return errors.Join(errs...)
}

// parentStatus finds (or adds) this controller's entry for parentRef pr.
func parentStatus(ps *[]gwv1.RouteParentStatus, pr gwv1.ParentReference, ctrlName gwv1.GatewayController) *gwv1.RouteParentStatus {
	for i := range *ps {
		if (*ps)[i].ControllerName == ctrlName && sameParent((*ps)[i].ParentRef, pr) {
			return &(*ps)[i]
		}
	}
	*ps = append(*ps, gwv1.RouteParentStatus{ParentRef: pr, ControllerName: ctrlName})
	return &(*ps)[len(*ps)-1]
}

func sameParent(a, b gwv1.ParentReference) bool {
	return a.Name == b.Name && ptrOr(a.Group, "") == ptrOr(b.Group, "") && ptrOr(a.Kind, "") == ptrOr(b.Kind, "") &&
		ptrOr(a.Namespace, "") == ptrOr(b.Namespace, "") && ptrOr(a.SectionName, "") == ptrOr(b.SectionName, "") &&
		ptrOr(a.Port, 0) == ptrOr(b.Port, 0)
}

// setAncestors writes one ancestor entry per targetRef (the target itself
// is the ancestor) with the policy's conditions, dropping this
// controller's entries for targets no longer referenced.
func setAncestors(st *gwv1.PolicyStatus, ns string, refs []agwv1.LocalPolicyTargetReferenceWithSectionName, ctrlName gwv1.GatewayController, want []metav1.Condition) bool {
	var keep []gwv1.PolicyAncestorStatus
	changed := false
	for _, a := range st.Ancestors {
		if a.ControllerName != ctrlName {
			keep = append(keep, a)
		}
	}
	var ours []gwv1.PolicyAncestorStatus
	for _, r := range refs {
		group := r.Group
		kind := r.Kind
		pns := gwv1.Namespace(ns)
		ref := gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &pns, Name: r.Name, SectionName: r.SectionName}
		var entry gwv1.PolicyAncestorStatus
		found := false
		for _, a := range st.Ancestors {
			if a.ControllerName == ctrlName && sameParent(a.AncestorRef, ref) {
				entry, found = *a.DeepCopy(), true
			}
		}
		if !found {
			entry = gwv1.PolicyAncestorStatus{AncestorRef: ref, ControllerName: ctrlName}
			changed = true
		}
		if setConditions(&entry.Conditions, want) {
			changed = true
		}
		ours = append(ours, entry)
		if len(keep)+len(ours) >= 16 { // PolicyStatus.Ancestors MaxItems
			break
		}
	}
	if n := len(st.Ancestors) - len(keep); n != len(ours) {
		changed = true
	}
	if changed {
		st.Ancestors = append(keep, ours...)
	}
	return changed
}
