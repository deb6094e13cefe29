//go:build tools

// Package tools pins the commands the test bed builds from this module.
package tools

import (
	_ "github.com/getsops/sops/v3/cmd/sops"
)
