package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/config"
	"golang.org/x/sys/unix"
)

const usersUsage = `usage: cloak users <command> [flags]

commands (each takes -config FILE and -data DIR, as serve does; serve
sees a change at once):
  add NAME -role ROLE [-agent AGENT] [-password-stdin]
                      a user; ROLE is agent, supervisor, archivist, auditor
                      or admin; -agent links an agent user to agents[].name;
                      the password is prompted (no echo) or read from stdin
  passwd NAME [-password-stdin]
                      set a user's password (ends their sessions; removes
                      DATA/initial-admin-password for admin)
  role NAME -role ROLE [-agent AGENT]
                      change a user's role (ends their sessions)
  disable NAME        a disabled user cannot sign in; sessions end at once
  enable NAME         undo disable
  list [-json]        users (never a password or hash)

passwords: at least 12 characters, not the user name, not a well-known
one (admin.auth.demo lifts this on loopback)`

const tokensUsage = `usage: cloak tokens <command> [flags]

commands (each takes -config FILE and -data DIR, as serve does):
  create -name NAME -role ROLE [-expires 90d]
                      prints the new token alone on stdout, once (it is
                      stored hashed); -expires is days (90d), a duration
                      (36h) or 0 for never; API clients send it as
                      Authorization: Bearer TOKEN
  list [-json]        id, name, role, expiry, revoked (never the token)
  revoke ID           the token stops working at once`

// runUsers implements `cloak users …`. Exit status: 0 done, 1 refused or
// database error, 2 usage or configuration.
func runUsers(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usersUsage)
		return 2
	}
	switch args[0] {
	case "add", "passwd", "role", "disable", "enable", "list":
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usersUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "cloak users: unknown command %q\n%s\n", args[0], usersUsage)
		return 2
	}
	cmd := args[0]
	var f archiveFlags
	fs := newArchiveFlagSet(cmd, stderr, &f)
	fs.Init("cloak users "+cmd, 0)
	role := fs.String("role", "", "the user's `ROLE`")
	agent := fs.String("agent", "", "the agents[].name an agent user is")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	pos, err := parseArchiveFlags(fs, args[1:])
	if err != nil {
		return 2
	}
	if (cmd == "list") != (len(pos) == 0) || len(pos) > 1 {
		fmt.Fprintf(stderr, "cloak users %s: want %s\n", cmd, map[bool]string{true: "no argument", false: "one NAME"}[cmd == "list"])
		return 2
	}
	s, cfg, err := openUserStore(f)
	if err != nil {
		fmt.Fprintln(stderr, "cloak users:", err)
		return 2
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	audit := func(action, detail string) error {
		_, err := s.Audit(ctx, archive.AuditEntry{Actor: cliActor(), Action: action, Detail: detail})
		return err
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "cloak users:", err)
		return 1
	}
	if cmd == "list" {
		us, err := s.Users(ctx)
		if err != nil {
			return fail(err)
		}
		if f.json {
			if us == nil {
				us = []archive.User{}
			}
			return printJSON(stdout, stderr, us)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tAGENT\tDISABLED\tCREATED\tPASSWORD CHANGED")
		for _, u := range us {
			agent := u.Agent
			if agent == "" {
				agent = cfg.AgentOfUser(u.Name)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", u.Name, u.Role, dash(agent), u.Disabled, day(u.Created), day(u.PasswordChanged))
		}
		_ = tw.Flush()
		return 0
	}
	name := pos[0]
	checkRole := func() (auth.Role, bool) {
		r, err := auth.ParseRole(*role)
		if err != nil {
			fmt.Fprintln(stderr, "cloak users:", err)
			return "", false
		}
		if *agent != "" {
			if r != auth.RoleAgent {
				fmt.Fprintln(stderr, "cloak users: -agent is for role agent")
				return "", false
			}
			if !cfg.HasAgent(*agent) {
				fmt.Fprintf(stderr, "cloak users: -agent %q is not in agents[] of the configuration\n", *agent)
				return "", false
			}
		}
		return r, true
	}
	switch cmd {
	case "add":
		r, ok := checkRole()
		if !ok {
			return 2
		}
		if err := auth.ValidUserName(name); err != nil {
			fmt.Fprintln(stderr, "cloak users:", err)
			return 2
		}
		hash, err := newPasswordHash(name, cfg, stdin, stderr, *pwStdin)
		if err != nil {
			return fail(err)
		}
		now := time.Now()
		if err := s.AddUser(ctx, archive.User{Name: name, Role: string(r), Agent: *agent, Hash: hash, Created: now, PasswordChanged: now}); err != nil {
			return fail(err)
		}
		if err := audit(archive.ActionUserAdd, "user="+name+" role="+string(r)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "user %s added (%s)\n", name, r)
	case "passwd":
		if _, err := s.UserByName(ctx, name); err != nil {
			return fail(err)
		}
		hash, err := newPasswordHash(name, cfg, stdin, stderr, *pwStdin)
		if err != nil {
			return fail(err)
		}
		if err := s.SetPassword(ctx, name, hash, time.Now()); err != nil {
			return fail(err)
		}
		if err := audit(archive.ActionUserPassword, "user="+name); err != nil {
			return fail(err)
		}
		if name == "admin" {
			if err := os.Remove(filepath.Join(cfg.Data.Dir, auth.InitialAdminFile)); err == nil {
				fmt.Fprintln(stderr, "removed", filepath.Join(cfg.Data.Dir, auth.InitialAdminFile))
			}
		}
		fmt.Fprintf(stderr, "password of %s changed; their sessions ended\n", name)
	case "role":
		r, ok := checkRole()
		if !ok {
			return 2
		}
		if err := s.SetRole(ctx, name, string(r), *agent); err != nil {
			return fail(err)
		}
		if err := audit(archive.ActionUserRole, "user="+name+" role="+string(r)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "%s is now %s; their sessions ended\n", name, r)
	case "disable", "enable":
		if err := s.SetDisabled(ctx, name, cmd == "disable"); err != nil {
			return fail(err)
		}
		if err := audit(archive.ActionUserDisable, "user="+name+" disabled="+fmt.Sprint(cmd == "disable")); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "%s %sd\n", name, cmd)
	}
	return 0
}

// runTokens implements `cloak tokens …`.
func runTokens(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, tokensUsage)
		return 2
	}
	cmd := args[0]
	switch cmd {
	case "create", "list", "revoke":
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, tokensUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "cloak tokens: unknown command %q\n%s\n", cmd, tokensUsage)
		return 2
	}
	var f archiveFlags
	fs := newArchiveFlagSet(cmd, stderr, &f)
	fs.Init("cloak tokens "+cmd, 0)
	name := fs.String("name", "", "the token's `NAME` (what it is for)")
	role := fs.String("role", "", "the token's `ROLE`")
	expires := fs.String("expires", "90d", "lifetime: days (90d), a duration (36h), or 0 for never")
	pos, err := parseArchiveFlags(fs, args[1:])
	if err != nil {
		return 2
	}
	if (cmd == "revoke") != (len(pos) == 1) || len(pos) > 1 {
		fmt.Fprintf(stderr, "cloak tokens %s: unexpected arguments %v\n", cmd, pos)
		return 2
	}
	var r auth.Role
	var life time.Duration
	if cmd == "create" {
		if r, err = auth.ParseRole(*role); err != nil {
			fmt.Fprintln(stderr, "cloak tokens:", err)
			return 2
		}
		if *name == "" || len(*name) > 64 || strings.ContainsAny(*name, "\r\n\t") {
			fmt.Fprintln(stderr, "cloak tokens: -name must be 1 to 64 characters on one line")
			return 2
		}
		if life, err = config.ParseRetention(*expires); err != nil {
			fmt.Fprintln(stderr, "cloak tokens: -expires:", err)
			return 2
		}
	}
	s, _, err := openUserStore(f)
	if err != nil {
		fmt.Fprintln(stderr, "cloak tokens:", err)
		return 2
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintln(stderr, "cloak tokens:", err)
		return 1
	}
	switch cmd {
	case "create":
		tok, id, err := auth.NewToken()
		if err != nil {
			return fail(err)
		}
		now := time.Now()
		t := archive.APIToken{ID: id, Name: *name, Role: string(r), Hash: auth.HashSecret(tok), CreatedBy: cliActor(), Created: now}
		if life > 0 {
			t.Expires = now.Add(life)
		}
		if err := s.AddToken(ctx, t); err != nil {
			return fail(err)
		}
		if _, err := s.Audit(ctx, archive.AuditEntry{Actor: cliActor(), Action: archive.ActionTokenCreate,
			Detail: "token=" + id + " name=" + *name + " role=" + string(r)}); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, tok)
		fmt.Fprintf(stderr, "token %s (%s, %s) created; it is shown only now\n", id, *name, r)
	case "list":
		ts, err := s.Tokens(ctx)
		if err != nil {
			return fail(err)
		}
		if f.json {
			if ts == nil {
				ts = []archive.APIToken{}
			}
			return printJSON(stdout, stderr, ts)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tEXPIRES\tREVOKED")
		for _, t := range ts {
			exp := "never"
			if !t.Expires.IsZero() {
				exp = t.Expires.Local().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, day(t.Created), exp, day(t.Revoked))
		}
		_ = tw.Flush()
	case "revoke":
		if err := s.RevokeToken(ctx, pos[0], time.Now()); err != nil {
			return fail(err)
		}
		if _, err := s.Audit(ctx, archive.AuditEntry{Actor: cliActor(), Action: archive.ActionTokenRevoke, Detail: "token=" + pos[0]}); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "token %s revoked\n", pos[0])
	}
	return 0
}

// openUserStore opens the database serve keeps users in (the archive's,
// even with archive.enabled false).
func openUserStore(f archiveFlags) (*archive.Store, config.Config, error) {
	cfg, err := loadConfig(serveFlags{config: f.config, data: f.data})
	if err != nil {
		return nil, cfg, err
	}
	cfg.Archive.Enabled = true // users live there whatever the archive does
	s, err := openArchiveWith(cfg)
	return s, cfg, err
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// newPasswordHash reads a password (stdin's first line, or prompted twice
// without echo on a terminal), checks it and hashes it.
func newPasswordHash(user string, cfg config.Config, stdin io.Reader, stderr io.Writer, fromStdin bool) (string, error) {
	var pw string
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	} else {
		first, err := prompt(stdin, stderr, "password for "+user+": ")
		if err != nil {
			return "", err
		}
		again, err := prompt(stdin, stderr, "again: ")
		if err != nil {
			return "", err
		}
		if first != again {
			return "", errors.New("the two passwords differ")
		}
		pw = first
	}
	if err := auth.CheckPassword(user, pw, cfg.Admin.Auth.Demo); err != nil {
		return "", err
	}
	return auth.HashPassword(pw, auth.DefaultParams)
}

// prompt reads one line with echo off when stdin is a terminal.
func prompt(stdin io.Reader, stderr io.Writer, what string) (string, error) {
	fmt.Fprint(stderr, what)
	if f, ok := stdin.(*os.File); ok {
		fd := int(f.Fd())
		if old, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			quiet := *old
			quiet.Lflag &^= unix.ECHO
			if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err == nil {
				defer func() {
					_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
					fmt.Fprintln(stderr)
				}()
			}
		}
	}
	var b []byte
	one := make([]byte, 1)
	for len(b) < 1024 {
		n, err := stdin.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimRight(string(b), "\r"), nil
			}
			b = append(b, one[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				return string(b), nil
			}
			return "", fmt.Errorf("read the password: %w", err)
		}
	}
	return "", errors.New("password longer than 1024 bytes")
}
