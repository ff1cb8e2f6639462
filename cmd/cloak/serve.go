package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/server"
	"github.com/rs/zerolog"
)

// bindFlags names the flag that overrides each listening field, for bind
// errors ("sip.listen (-sip): 127.0.0.1:5060 already in use").
var bindFlags = map[string]string{"sip.listen": "-sip", "admin.listen": "-admin", "rtp.ports": "-rtp-ports"}

// serveFlags are the command-line overrides; they win over the file.
type serveFlags struct {
	config     string
	sip        string
	rtpPorts   string
	data       string
	logLevel   string
	admin      string
	cpuProfile string
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloak serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` (default: embedded defaults)")
	fs.StringVar(&f.sip, "sip", "", "SIP listen `ADDR:PORT` for UDP and TCP (overrides sip.listen)")
	fs.StringVar(&f.rtpPorts, "rtp-ports", "", "RTP port range `LO-HI` (overrides rtp.ports)")
	fs.StringVar(&f.data, "data", "", "data `DIR` (overrides data.dir)")
	fs.StringVar(&f.logLevel, "log-level", "", "log `LEVEL`: trace, debug, info, warn, error (overrides log.level)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` until shutdown (go tool pprof)")
	fs.StringVar(&f.admin, "admin", "", "HTTP API `ADDR:PORT`, or \"off\" (overrides admin.listen)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cloak serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak serve: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "cloak serve: -cpuprofile: %v\n", err)
			return 2
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintf(stderr, "cloak serve: -cpuprofile: %v\n", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = pf.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, log, server.Options{Version: version}); err != nil {
		var be *server.BindError
		if errors.As(err, &be) {
			// One line: the field, its flag, the address and why.
			be.Flag = bindFlags[be.Field]
			log.Error().Msg("cannot start: " + be.Error())
			return 1
		}
		log.Error().Err(err).Msg("cloak stopped")
		return 1
	}
	return 0
}

// loadConfig reads the file (or the defaults), applies the flags and
// validates the result.
func loadConfig(f serveFlags) (config.Config, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return cfg, err
		}
	}
	if f.sip != "" {
		cfg.SIP.Listen = f.sip
	}
	if f.rtpPorts != "" {
		cfg.RTP.Ports = f.rtpPorts
	}
	if f.data != "" {
		cfg.Data.Dir = f.data
	}
	if f.logLevel != "" {
		cfg.Log.Level = f.logLevel
	}
	switch f.admin {
	case "":
	case "off":
		cfg.Admin.Listen = ""
	default:
		cfg.Admin.Listen = f.admin
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("bad configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.Log.Level)
	if cfg.Log.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.StampMilli, NoColor: true}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
