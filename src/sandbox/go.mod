module ferry.dev/sandbox

go 1.26.0
