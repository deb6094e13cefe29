//go:build tools

// Package tools pins the commands the test bed builds from this module.
package tools

import (
	_ "filippo.io/age/cmd/age"
	_ "filippo.io/age/cmd/age-keygen"
)
