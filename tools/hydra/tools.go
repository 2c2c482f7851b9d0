//go:build tools

// Package tools pins ORY Hydra, the OAuth 2.0 authorization server (client_credentials grant, JWT access
// tokens) used by the OAuth discovery end-to-end tests.
package tools

import _ "github.com/ory/hydra/v2"
