//go:build tools

// Package tools pins the command the test bed builds from this module: Flux's kustomize-controller (main.go at the
// module root).
package tools

import (
	_ "github.com/fluxcd/kustomize-controller"
)
