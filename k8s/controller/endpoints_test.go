package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A headless Service is dialled at its first ready endpoint for the named
// port, in a stable order (every replica picks the same). The API server
// refuses loopback addresses in EndpointSlices, so this path is tested here
// rather than end to end.
func TestEndpointFor(t *testing.T) {
	ptr := func(v int32) *int32 { return &v }
	name := func(s string) *string { return &s }
	ready := func(b bool) discoveryv1.EndpointConditions { return discoveryv1.EndpointConditions{Ready: &b} }
	slices := []discoveryv1.EndpointSlice{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "b"},
			Ports:      []discoveryv1.EndpointPort{{Name: name("http"), Port: ptr(9000)}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1"}, Conditions: ready(false)},
				{Addresses: []string{"10.0.0.9"}, Conditions: ready(true)},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Ports:      []discoveryv1.EndpointPort{{Name: name("metrics"), Port: ptr(9100)}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.2"}}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "c"},
			Ports:      []discoveryv1.EndpointPort{{Name: name("http"), Port: ptr(9000)}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.5"}}}, // readiness unknown counts as ready
		},
	}
	if got := endpointFor(slices, corev1.ServicePort{Name: "http", Port: 80}); got != "10.0.0.5:9000" {
		t.Errorf("http: got %q, want 10.0.0.5:9000", got)
	}
	if got := endpointFor(slices, corev1.ServicePort{Name: "metrics", Port: 91}); got != "10.0.0.2:9100" {
		t.Errorf("metrics: got %q", got)
	}
	if got := endpointFor(slices, corev1.ServicePort{Name: "grpc", Port: 81}); got != "" {
		t.Errorf("unknown port: got %q, want none", got)
	}
	if got := endpointFor(slices[:1], corev1.ServicePort{Name: "http"}); got != "10.0.0.9:9000" {
		t.Errorf("not-ready endpoint chosen: %q", got)
	}
}
