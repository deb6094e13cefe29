//go:build tools

// Package tools pins controller-gen and the Flux API modules whose CustomResourceDefinitions it generates.
package tools

import (
	_ "github.com/fluxcd/kustomize-controller/api/v1"
	_ "github.com/fluxcd/source-controller/api/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
