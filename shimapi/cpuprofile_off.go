//go:build !shimprofile

package shimapi

// profileCPUUntilSIGUSR2 is a no-op without -tags shimprofile (cpuprofile.go).
func profileCPUUntilSIGUSR2() {}
