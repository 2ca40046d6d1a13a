package cli

import (
	"errors"
	"sort"
	"strings"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// oneLine joins a multi-line error (errors.Join) into one line.
func oneLine(err error) error {
	s := err.Error()
	if !strings.Contains(s, "\n") {
		return err
	}
	return errors.New(strings.ReplaceAll(s, "\n", "; "))
}
