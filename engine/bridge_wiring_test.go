package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/ir"
)

// A configuration with a stdio target activates only in a gateway that
// allows stdio (the standalone one); the previous configuration keeps
// serving otherwise.
func TestActivateStdioOnlyWhenAllowed(t *testing.T) {
	b := buildBundle(t, configYAML("3001", "http://127.0.0.1:1/keys"), nil)
	for _, be := range b.Config.Backends {
		be.Targets[0] = ir.Target{Name: be.Targets[0].Name, URL: "http://0123456789abcdef0123.stdio." + ir.BridgeDomain + "/mcp", Protocol: "Stdio", Stdio: &ir.Stdio{Cmd: "true"}}
	}

	g := New(Options{})
	defer g.Close(context.Background())
	err := g.Activate(context.Background(), b)
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrActivate))
	require.True(t, strings.Contains(err.Error(), "standalone gateway only"), err.Error())
	require.Nil(t, g.Config())

	allowed := New(Options{AllowStdio: true})
	require.NoError(t, allowed.Activate(context.Background(), b))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	allowed.Close(ctx)
	require.Equal(t, 0, allowed.bridges.Processes())
}
