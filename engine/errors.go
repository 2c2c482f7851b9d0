package engine

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/engine/policy"
)

// This file is the one place that writes errors to clients: JSON-RPC errors
// for MCP traffic, RFC 6750 bodies for authentication challenges.

func writeJSONRPCError(w http.ResponseWriter, status int, id jsontext.Value, code int, message string, data any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(mcp.ErrorResponse(id, code, message, data))
}

// writeDenial enforces a negative decision.
func writeDenial(w http.ResponseWriter, id jsontext.Value, d *policy.Decision) {
	h := w.Header()
	for k, v := range d.Headers {
		if safeHeader(k, v) {
			h.Set(k, v)
		}
	}
	if d.WWWAuthenticate != "" && safeHeader("WWW-Authenticate", d.WWWAuthenticate) {
		h.Set("WWW-Authenticate", d.WWWAuthenticate)
	}
	status := d.HTTPStatus
	if (status < 400 || status > 599) && !(status == http.StatusOK && d.JSONRPCError != nil) {
		status = http.StatusForbidden
	}
	if d.OAuthError != nil {
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		b, _ := json.Marshal(d.OAuthError)
		_, _ = w.Write(b)
		return
	}
	code, msg := mcp.CodeInvalidRequest, "request denied by policy"
	var data any
	if e := d.JSONRPCError; e != nil {
		code, msg, data = e.Code, e.Message, e.Data
	}
	writeJSONRPCError(w, status, id, code, msg, data)
}

// safeHeader refuses header names and values a policy (or a claim value it
// copied) could use to inject headers or split the response.
func safeHeader(name, value string) bool {
	if name == "" || strings.ContainsAny(name, " \t\r\n:") || strings.ContainsAny(value, "\r\n\x00") {
		return false
	}
	switch strings.ToLower(name) {
	case "content-length", "transfer-encoding", "connection", "content-type", "set-cookie":
		return false
	}
	return true
}

func writeParseError(w http.ResponseWriter, err error) {
	if e, ok := err.(*mcp.Error); ok {
		writeJSONRPCError(w, http.StatusBadRequest, e.ID, e.Code, e.Message, nil)
		return
	}
	writeJSONRPCError(w, http.StatusBadRequest, nil, mcp.CodeParseError, "parse error", nil)
}

// writeOAuthError writes an RFC 6749 §5.2-style error body for the OAuth
// endpoints the gateway serves itself (authorization-server metadata,
// client registration).
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	_, _ = w.Write(b)
}
