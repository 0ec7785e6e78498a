package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feedapi"
	"github.com/acp-bridge/bridge/feedpush"
	"github.com/acp-bridge/bridge/sftppush"
	"github.com/acp-bridge/bridge/storage/postgres"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/upstream"
)

// Both storage drivers keep pushes to one process at a time.
var (
	_ feedpush.Locker = (*sqlite.DB)(nil)
	_ feedpush.Locker = (*postgres.DB)(nil)
)

// newPushRunner assembles the configured push targets (none: a runner
// with no targets, which does nothing). reg receives the push and
// upstream metrics; nil for one-shot commands.
func (a *app) newPushRunner(reg prometheus.Registerer) (*feedpush.Runner, error) {
	cfg := a.cfg.Feed.Push
	r := &feedpush.Runner{Store: a.storage, Log: a.log}
	// One process pushes a target at a time: replicas on one Postgres
	// database, `serve` and `bridge feed push` on one SQLite file.
	if l, ok := a.storage.(feedpush.Locker); ok {
		r.Lock = l
	}
	if reg != nil {
		r.Metrics = feedpush.NewMetrics(reg)
	}
	if f := cfg.FeedAPI; f.Enabled() {
		client := upstream.New(upstream.Config{Name: "feed_api", Budget: time.Minute, Logger: a.log, Registerer: reg,
			MaxBodyBytes: 32 << 20})
		r.Targets = append(r.Targets, feedpush.Schedule{
			Name: feedapi.Target, Every: f.Every, AfterChange: f.Delay,
			Target: &feedapi.Pusher{
				Client: &feedapi.Client{BaseURL: f.BaseURL, Token: f.Token.Value(), SigningSecret: f.SigningSecret.Value(),
					Version: f.APIVersion, HTTP: client},
				Store: a.storage, Settings: a.settings, Country: f.TargetCountry, FeedID: f.FeedID,
				BatchProducts: f.BatchProducts, Log: a.log,
			},
		})
	}
	if s := cfg.SFTP; s.Enabled() {
		t, err := a.newSFTPTarget()
		if err != nil {
			return nil, err
		}
		r.Targets = append(r.Targets, feedpush.Schedule{Name: t.Name(), Target: t, Every: s.Every})
	}
	return r, nil
}

// cmdFeedPush pushes the stored snapshot to the configured targets now,
// beside a running server or instead of one.
func cmdFeedPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("feed push", stderr)
	only := fs.String("target", "", "push only this target (feed_api or sftp); default: every configured target")
	all := fs.Bool("all", false, "send every product to the Feed API, not only the changed ones (the agent lost what it had)")
	a, err := openApp(ctx, fs, cfgPath, args, stderr, true)
	if err != nil {
		return err
	}
	defer a.close()
	r, err := a.newPushRunner(nil)
	if err != nil {
		return reportAssembly(err, stderr)
	}
	if *all {
		for _, t := range r.Targets {
			if p, ok := t.Target.(*feedapi.Pusher); ok {
				p.All = true
			}
		}
	}
	names, err := targetNames(r, *only)
	if err != nil {
		fmt.Fprintln(stderr, "bridge feed push:", err)
		return exitError{2}
	}
	var failed []string
	for _, name := range names {
		start := time.Now()
		st, err := r.PushNow(ctx, name)
		if err != nil {
			failed = append(failed, name)
			fmt.Fprintf(stdout, "%s: failed after %s: %v\n", name, time.Since(start).Round(time.Millisecond), err)
			continue
		}
		fmt.Fprintf(stdout, "%s: pushed %d item(s), %d bytes in %s; %d product(s) rejected, %d withdrawn\n",
			name, st.Items, st.Bytes, time.Since(start).Round(time.Millisecond), st.Rejected, st.Retracted)
		printRejected(stdout, st)
	}
	if len(failed) > 0 {
		return exitError{1}
	}
	return nil
}

// cmdFeedStatus prints the last push of each configured target, from
// storage (so it shows what a running server did).
func cmdFeedStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("feed status", stderr)
	asJSON := fs.Bool("json", false, "print the states as JSON")
	a, err := openApp(ctx, fs, cfgPath, args, stderr, true)
	if err != nil {
		return err
	}
	defer a.close()
	r, err := a.newPushRunner(nil)
	if err != nil {
		return reportAssembly(err, stderr)
	}
	sts, err := r.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sts)
	}
	if len(sts) == 0 {
		fmt.Fprintln(stdout, "no push target is configured (feed.push)")
		return nil
	}
	for _, st := range sts {
		fmt.Fprintln(stdout, pushSummary(st))
		printRejected(stdout, st)
	}
	return nil
}

// pushSummary is one line about a target's last push, for the status
// command and /readyz.
func pushSummary(st bridge.FeedPushState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", st.Target)
	switch {
	case st.LastAttempt.IsZero():
		b.WriteString("never pushed")
		return b.String()
	case st.Error != "":
		fmt.Fprintf(&b, "failed at %s: %s", st.LastAttempt.Format(time.RFC3339), st.Error)
	default:
		fmt.Fprintf(&b, "ok at %s", st.LastSuccess.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "; %d item(s), %d bytes sent; %d rejected, %d withdrawn", st.Items, st.Bytes, st.Rejected, st.Retracted)
	if st.Error != "" && !st.LastSuccess.IsZero() {
		fmt.Fprintf(&b, "; last success %s", st.LastSuccess.Format(time.RFC3339))
	}
	if st.RemoteID != "" {
		fmt.Fprintf(&b, "; feed %s", st.RemoteID)
	}
	return b.String()
}

func printRejected(w io.Writer, st bridge.FeedPushState) {
	for _, r := range st.RejectedSample {
		fmt.Fprintf(w, "  rejected %s: %s\n", r.ProductID, r.Reason)
	}
	if more := st.Rejected - len(st.RejectedSample); more > 0 {
		fmt.Fprintf(w, "  … and %d more\n", more)
	}
}

// targetNames is the targets to push: only, or all configured ones.
func targetNames(r *feedpush.Runner, only string) ([]string, error) {
	var names []string
	for _, t := range r.Targets {
		if only == "" || t.Name == only {
			names = append(names, t.Name)
		}
	}
	switch {
	case len(r.Targets) == 0:
		return nil, errors.New("no push target is configured (feed.push.feed_api or feed.push.sftp)")
	case len(names) == 0:
		return nil, fmt.Errorf("target %q is not configured", only)
	}
	return names, nil
}

// newSFTPTarget builds the SFTP target from feed.push.sftp; its formats
// are checked like feed.formats.
func (a *app) newSFTPTarget() (*sftppush.Pusher, error) {
	s := a.cfg.Feed.Push.SFTP
	formats, ps := resolveFormats(a.cfg, "feed.push.sftp.formats", s.Formats)
	if len(ps) > 0 {
		return nil, ps
	}
	p := &sftppush.Pusher{
		Addr: sftppush.Addr(s.Host, s.Port), User: s.User, Password: s.Password.Value(),
		HostKeyFingerprint: s.HostKeyFingerprint, Dir: s.Dir, Formats: formats,
		ShardItems: s.ShardItems, ShardBytes: s.ShardBytes,
		Store: a.storage, Settings: a.settings, Log: a.log,
	}
	if s.PrivateKey != "" {
		signer, err := sftppush.ParsePrivateKey([]byte(s.PrivateKey.Value()), []byte(s.PrivateKeyPassphrase.Value()))
		if err != nil {
			return nil, bridge.Problems{{File: a.cfg.File, Line: a.cfg.Line("feed.push.sftp.private_key"), Key: "feed.push.sftp.private_key", Message: err.Error()}}
		}
		p.Signer = signer
	}
	if s.HostKeyFingerprint == "" {
		a.log.Warn("feed.push.sftp.host_key_fingerprint is not set: the SFTP server's identity is not checked")
	}
	return p, nil
}
