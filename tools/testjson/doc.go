// Command testjson reads `go test -json` output (the test2json event
// stream, cmd/test2json) and does one of two things:
//
//	go test -json ./... | testjson            prints what go test without -v
//	                                          prints: package results, and the
//	                                          whole output of every failed or
//	                                          unfinished test
//	testjson -slowest 15 [-pkg e2e] FILE...   prints the 15 slowest top-level
//	                                          tests (elapsed as go test reports
//	                                          it; a parallel test's time waiting
//	                                          for its turn is not counted) and
//	                                          each package's wall time
//
// scripts/test.sh saves the race run's events with tee and pipes them
// through the first form, then prints the second in its summary.
package main
