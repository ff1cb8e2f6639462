package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Millisecond timestamps in every log line (set once, before any logger).
	zerolog.TimeFieldFormat = time.RFC3339Nano
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: cloak <command> [flags]

commands:
  serve         run the SIP/RTP server (cloak serve -h for flags)
  version       print the version
  dtmf scan     list the DTMF digits found in a WAV recording
  flows check   validate a directory of IVR flows
  recording verify|info   check a recording's integrity (SHA-256 + HMAC sidecar), show its pause markers
  archive search|show|audit|purge|reindex|delete-recording|anonymise   finished interactions (cloak archive -h)
  fraud rules check       validate fraud rules (a YAML file or a directory of them)
  fraud rules load|list|history       the rules in the archive database: replace (audited), show, changes
  fraud data add|remove|list|import   static fraud data in the archive database
  fraud holds|release|reject|hold|comment
                                      held payments: list, capture, void, hold by hand, comment (audited)
  users add|passwd|role|disable|enable|list   API users (cloak users -h)
  tokens create|list|revoke                    API tokens (cloak tokens -h)`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "cloak", version)
		return 0
	case "dtmf":
		return runDTMF(args[1:], stdout, stderr)
	case "flows":
		return runFlows(args[1:], stdout, stderr)
	case "recording":
		return runRecording(args[1:], stdout, stderr)
	case "archive":
		return runArchive(args[1:], stdout, stderr)
	case "fraud":
		return runFraud(args[1:], stdout, stderr)
	case "users":
		return runUsers(args[1:], os.Stdin, stdout, stderr)
	case "tokens":
		return runTokens(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "cloak: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}
