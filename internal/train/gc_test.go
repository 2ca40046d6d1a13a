package train

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLowGC: overlapping Runs share GOGC 25 and the last one to finish
// restores the setting from before the first, whatever the order.
func TestLowGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	a := lowGC()
	require.Equal(t, 25, debug.SetGCPercent(25))
	b := lowGC()
	a()
	require.Equal(t, 25, debug.SetGCPercent(25), "restored while a Run was still going")
	b()
	require.Equal(t, 150, debug.SetGCPercent(150))
}
