//go:build tools

// Package tools pins the command the test bed builds from this module: Flux's source-controller (main.go at the
// module root).
package tools

import (
	_ "github.com/fluxcd/source-controller"
)
