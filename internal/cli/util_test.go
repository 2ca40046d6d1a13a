package cli

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFlatten(t *testing.T) {
	tests := []struct{ in, want string }{
		{"one line", "one line"},
		{"", ""},
		{"a\nb", "a; b"},
		{"a\r\nb\n", "a; b"},
		{`unknown command "rn" for "mlship"` + "\n\nDid you mean this?\n\trun\n", `unknown command "rn" for "mlship"; Did you mean this? run`},
		{"heading:\n  x\n  y", "heading: x; y"},
		{"\n\n  \n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, flatten(tt.in))
		})
	}
}

func TestOneLine(t *testing.T) {
	plain := errors.New("plain")
	assert.Same(t, plain, oneLine(plain), "a one-line error is returned as it is")
	assert.EqualError(t, oneLine(errors.Join(errors.New("a"), errors.New("b"))), "a; b")
}
