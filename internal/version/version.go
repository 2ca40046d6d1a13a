// Package version holds the mlship version, set at build time with
// -ldflags "-X github.com/mlship/mlship/internal/version.Version=v1.2.3".
package version

// Version of mlship; "dev" for builds without the flag.
var Version = "dev"
