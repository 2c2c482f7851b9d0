//go:build tools

// Package tools pins the Dex identity provider used by the end-to-end tests and the demo.
package tools

import _ "github.com/dexidp/dex/cmd/dex"
