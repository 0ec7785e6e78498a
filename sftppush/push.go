// Package sftppush uploads full feed snapshots to an SFTP drop, the way
// OpenAI's file upload takes them (docs/product-feed.md §2): the whole
// catalog every run, under stable file names overwritten each time, cut
// into shards of at most 500k items and about 500 MB.
//
// # Never half a file
//
// Each file is rendered locally from the stored snapshot, then uploaded
// under a temporary name (".<name>.<sha256>.part") and renamed over the
// stable name only when every file of the run is complete (the
// posix-rename@openssh.com extension, an atomic replace; plain rename
// after a remove where the server lacks it). A reader sees a file's
// previous content or its new one, never a truncated file.
//
// Atomicity is per file, not per set: SFTP has no way to replace several
// files at once, and the agent reads fixed names in a fixed folder, so a
// staging-folder swap is not available. The renames of one format follow
// each other, then the files of that format the new set does not have
// (shards of a bigger catalog, temporary files of interrupted runs) are
// removed at once, and acp/metadata.json is renamed last, after its
// products. A reader listing the folder during those moments may see new
// shards beside old ones; a removal that fails fails the push (the state
// says so) instead of leaving the mix unnoticed.
//
// # Dropped connections
//
// A connection that drops mid-upload is dialed again (up to MaxAttempts in
// all) and the upload resumes at the size the temporary file reached.
// Writes are sequential (pkg/sftp's default), so a partial file is a
// prefix of its content, and the temporary name carries the content's
// SHA-256, so a resume can only continue the same bytes. The size is
// checked after each upload.
//
// # Host keys
//
// The server's host key must match HostKeyFingerprint (SHA256:…, as
// ssh-keygen -lf prints it); a mismatch refuses the connection before the
// password or key is sent. Without a fingerprint any key is accepted with
// a warning (the config refuses that in production).
package sftppush

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
)

// Target is the name of this push target in storage, metrics and status.
const Target = "sftp"

// Store is what a push reads and records.
type Store interface {
	CatalogInfo(ctx context.Context) (bridge.CatalogInfo, error)
	EachCatalogEntry(ctx context.Context, fn func(bridge.CatalogEntry) error) error
	FeedPushState(ctx context.Context, target string) (bridge.FeedPushState, error)
	SaveFeedPushState(ctx context.Context, s bridge.FeedPushState) error
}

// Defaults of the shard limits: OpenAI's file upload takes shards of at
// most 500k items and under about 500 MB.
const (
	DefaultShardItems = 500_000
	DefaultShardBytes = 500_000_000
	// DefaultMaxAttempts is how many connections one push may make.
	DefaultMaxAttempts = 4
)

// ErrHostKey is the cause of a refused connection: the server's host key
// is not the configured one.
var ErrHostKey = errors.New("sftp: host key mismatch")

// ErrAuth is the cause of a connection the server refused to log in:
// wrong user, password or key. It is not retried: dialing again cannot
// fix it, and repeated failed logins get the bridge's address banned
// (fail2ban and the like).
var ErrAuth = errors.New("sftp: authentication refused")

// Pusher uploads the snapshot's feed files to one SFTP server. Set the
// fields, then call Push (pushes run one at a time).
type Pusher struct {
	// Addr is host:port.
	Addr string
	User string
	// Password and/or Signer (from the private key) authenticate.
	Password string
	Signer   ssh.Signer
	// HostKeyFingerprint pins the host key ("SHA256:…"); "" accepts any.
	HostKeyFingerprint string
	// Dir is the remote folder.
	Dir string
	// Formats are the files to upload.
	Formats []feed.Format
	// ShardItems and ShardBytes bound a shard (defaults
	// DefaultShardItems, DefaultShardBytes).
	ShardItems int
	ShardBytes int64
	// MaxAttempts bounds the connections of one push (default
	// DefaultMaxAttempts); RetryWait is the pause between them (default 2s).
	MaxAttempts int
	RetryWait   time.Duration
	// Timeout bounds the dial and the SSH handshake (default 30s).
	Timeout time.Duration
	Store   Store
	// Settings are the feed settings (merchant, countries, feed id).
	Settings feed.Settings
	// TempDir is where files are rendered before upload (default the
	// system's).
	TempDir string
	Log     *slog.Logger
	// Now is the clock of the status (default time.Now).
	Now func() time.Time
	// Dial opens the TCP connection (default net.Dialer); tests wrap it.
	Dial func(ctx context.Context, addr string) (net.Conn, error)

	mu sync.Mutex
	// refuseRemove, in tests, fails the removal of a remote file when it
	// returns an error (a server that refuses; root ignores permissions).
	refuseRemove func(name string) error
}

// ParsePrivateKey reads a PEM private key (OpenSSH, PKCS#1/#8, EC),
// decrypting it with passphrase when it is encrypted. Errors never quote
// the key.
func ParsePrivateKey(pem, passphrase []byte) (ssh.Signer, error) {
	var s ssh.Signer
	var err error
	if len(passphrase) > 0 {
		s, err = ssh.ParsePrivateKeyWithPassphrase(pem, passphrase)
	} else {
		s, err = ssh.ParsePrivateKey(pem)
	}
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, errors.New("sftp: the private key is encrypted: set private_key_passphrase")
	case err != nil:
		return nil, errors.New("sftp: the private key cannot be read (want a PEM private key, OpenSSH or PKCS#8)")
	}
	return s, nil
}

// Name is the target's name.
func (p *Pusher) Name() string { return Target }

// Push renders the stored snapshot's formats and uploads them, then
// records the outcome as the target's state (also returned).
func (p *Pusher) Push(ctx context.Context) (bridge.FeedPushState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.now()
	st, err := p.Store.FeedPushState(ctx, Target)
	if err != nil && !errors.Is(err, bridge.ErrNotFound) {
		return st, fmt.Errorf("sftp push: %w", err)
	}
	st.Target, st.LastAttempt = Target, start.UTC()
	st.RejectedSample, st.Rejected = nil, 0
	run := &upload{p: p, log: p.logger()}
	version, err := run.do(ctx)
	st.Items, st.Bytes, st.Error = run.items, run.bytes, ""
	if err != nil {
		st.Error = err.Error()
	} else {
		st.LastSuccess, st.Version = st.LastAttempt, version
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := p.Store.SaveFeedPushState(sctx, st); serr != nil {
		err = errors.Join(err, fmt.Errorf("sftp push: record the outcome: %w", serr))
	}
	log := run.log.With("version", version, "files", run.files, "items", run.items, "bytes", run.bytes,
		"uploaded", run.sent, "connections", run.conns, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		log.Error("sftp push failed", "err", err)
		return st, err
	}
	log.Info("sftp push done")
	return st, nil
}

// upload is one run's working state.
type upload struct {
	p     *Pusher
	log   *slog.Logger
	items int   // variants in the uploaded files
	bytes int64 // size of the uploaded files
	sent  int64 // bytes written to the server (less than bytes after a resume)
	files int
	conns int

	ssh  *ssh.Client
	sftp *sftp.Client
	stop func() bool // unregisters the connection's cancellation
}

func (u *upload) do(ctx context.Context) (string, error) {
	p := u.p
	info, err := p.Store.CatalogInfo(ctx)
	if errors.Is(err, bridge.ErrNotFound) {
		// Wraps ErrNotFound: the runner does not back off from it, since
		// the first snapshot (Changed) is what ends it.
		return "", fmt.Errorf("sftp push: no catalog snapshot yet (%w)", err)
	}
	if err != nil {
		return "", fmt.Errorf("sftp push: %w", err)
	}
	tmp, err := os.MkdirTemp(p.TempDir, "bridge-sftp-*")
	if err != nil {
		return info.Version, fmt.Errorf("sftp push: %w", err)
	}
	defer os.RemoveAll(tmp)
	s := p.Settings
	s.GeneratedAt = info.SyncedAt // the same snapshot gives the same bytes
	items, maxBytes := p.ShardItems, p.ShardBytes
	if items <= 0 {
		items = DefaultShardItems
	}
	if maxBytes <= 0 {
		maxBytes = DefaultShardBytes
	}
	sets, err := render(ctx, tmp, p.Formats, s, items, maxBytes, p.Store.EachCatalogEntry)
	if err != nil {
		return info.Version, fmt.Errorf("sftp push: render: %w", err)
	}
	var all []file
	for _, set := range sets {
		all = append(all, set.files...)
		for _, f := range set.files {
			u.items += f.items
			u.bytes += f.size
		}
	}
	u.files = len(all)
	defer u.close()

	// Upload every file under its temporary name, reconnecting and
	// resuming after a dropped connection.
	if err := u.retry(ctx, func() error {
		for _, f := range all {
			if err := u.put(ctx, f); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return info.Version, err
	}
	// All there: now replace the stable names, format by format, and
	// right after a format's renames remove its files the new set does
	// not have (shards of a bigger catalog, the single name when it is now
	// cut in parts, temporary files of interrupted runs), so old shards
	// sit beside new ones for as short a time as the server allows. A
	// removal that fails fails the push: readers may then see both.
	if err := u.retry(ctx, func() error {
		keep := u.keep(sets)
		for _, set := range sets {
			var marker []file // acp/metadata.json: renamed last, once its products are in place
			for _, f := range set.files {
				if f.remote == feed.FileACPMetadata {
					marker = append(marker, f)
					continue
				}
				if err := u.rename(f); err != nil {
					return err
				}
			}
			if err := u.tidy(set.format, keep); err != nil {
				return fmt.Errorf("the new %s files are in place but the old ones could not all be removed, so readers may see both: %w", set.format, err)
			}
			for _, f := range marker {
				if err := u.rename(f); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return info.Version, err
	}
	return info.Version, nil
}

// retry runs fn on a live connection, dialing again after a connection
// failure until MaxAttempts connections were made. Errors that are not
// about the connection (a refused host key, a full disk) end it at once.
func (u *upload) retry(ctx context.Context, fn func() error) error {
	max := u.p.MaxAttempts
	if max <= 0 {
		max = DefaultMaxAttempts
	}
	wait := u.p.RetryWait
	if wait <= 0 {
		wait = 2 * time.Second
	}
	for {
		err := u.connect(ctx)
		if err == nil {
			if err = fn(); err == nil {
				return nil
			}
		}
		if !u.lost(err) || u.conns >= max || ctx.Err() != nil {
			return fmt.Errorf("sftp push: %w", err)
		}
		u.log.Warn("sftp: connection lost; dialing again", "attempt", u.conns, "err", err)
		u.close()
		select {
		case <-ctx.Done():
			return fmt.Errorf("sftp push: %w", context.Cause(ctx))
		case <-time.After(wait):
		}
	}
}

// lost reports whether err is the connection's failure rather than the
// server's answer, so that dialing again may help. A refused host key or
// login is the configuration's fault: never retried.
func (u *upload) lost(err error) bool {
	var se *sftp.StatusError
	switch {
	case errors.Is(err, ErrHostKey), errors.Is(err, ErrAuth), errors.As(err, &se):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, sftp.ErrSSHFxConnectionLost),
		errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || u.sftp == nil
}

// connect dials the server unless a connection is open.
func (u *upload) connect(ctx context.Context) error {
	if u.sftp != nil {
		return nil
	}
	p := u.p
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dial := p.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: timeout}
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	u.conns++
	conn, err := dial(ctx, p.Addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.Addr, err)
	}
	var auth []ssh.AuthMethod
	if p.Signer != nil {
		auth = append(auth, ssh.PublicKeys(p.Signer))
	}
	if p.Password != "" {
		auth = append(auth, ssh.Password(p.Password))
	}
	cfg := &ssh.ClientConfig{User: p.User, Auth: auth, HostKeyCallback: u.checkHostKey, Timeout: timeout}
	_ = conn.SetDeadline(time.Now().Add(timeout)) // the handshake only
	c, chans, reqs, err := ssh.NewClientConn(conn, p.Addr, cfg)
	if err != nil {
		_ = conn.Close()
		if errors.Is(err, ErrHostKey) {
			return err
		}
		// x/crypto/ssh has no error type for it; this text is the one its
		// client returns when every method was refused (client_auth.go).
		if strings.Contains(err.Error(), "ssh: unable to authenticate") {
			return fmt.Errorf("%w by %s as %q (check user, password, private_key): %w", ErrAuth, p.Addr, p.User, err)
		}
		return fmt.Errorf("ssh handshake with %s: %w", p.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	u.ssh = ssh.NewClient(c, chans, reqs)
	cl, err := sftp.NewClient(u.ssh)
	if err != nil {
		u.close()
		return fmt.Errorf("start sftp on %s: %w", p.Addr, err)
	}
	u.sftp = cl
	// Cancellation closes the connection, which ends any call in flight.
	sc := u.ssh
	u.stop = context.AfterFunc(ctx, func() { _ = sc.Close() })
	return nil
}

func (u *upload) checkHostKey(_ string, _ net.Addr, key ssh.PublicKey) error {
	want := u.p.HostKeyFingerprint
	got := ssh.FingerprintSHA256(key)
	if want == "" {
		u.log.Warn("sftp: host key not checked (set host_key_fingerprint)", "fingerprint", got)
		return nil
	}
	if got != want {
		return fmt.Errorf("%w: the server at %s presented %s, the config pins %s", ErrHostKey, u.p.Addr, got, want)
	}
	return nil
}

func (u *upload) close() {
	if u.stop != nil {
		u.stop()
		u.stop = nil
	}
	if u.sftp != nil {
		_ = u.sftp.Close()
		u.sftp = nil
	}
	if u.ssh != nil {
		_ = u.ssh.Close()
		u.ssh = nil
	}
}

// remote is the path of name in the remote folder.
func (p *Pusher) remote(name string) string { return path.Join(p.Dir, name) }

// tempName is where f is uploaded before the rename.
func tempName(f file) string {
	dir, base := path.Split(f.remote)
	return dir + "." + base + "." + f.sum[:16] + ".part"
}

// put uploads f to its temporary name, continuing a partial upload.
func (u *upload) put(ctx context.Context, f file) error {
	c := u.sftp
	dst := u.p.remote(tempName(f))
	if err := c.MkdirAll(path.Dir(dst)); err != nil {
		return fmt.Errorf("create remote folder %s: %w", path.Dir(dst), err)
	}
	var from int64
	if fi, err := c.Stat(dst); err == nil && fi.Size() <= f.size {
		from = fi.Size()
	}
	if from == f.size {
		return nil // uploaded before the connection dropped
	}
	src, err := os.Open(f.local)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := src.Seek(from, io.SeekStart); err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE
	if from == 0 {
		flags |= os.O_TRUNC
	}
	w, err := c.OpenFile(dst, flags)
	if err != nil {
		return fmt.Errorf("open %s: %w", dst, err)
	}
	if _, err := w.Seek(from, io.SeekStart); err != nil {
		_ = w.Close()
		return fmt.Errorf("seek %s: %w", dst, err)
	}
	if from > 0 {
		u.log.Info("sftp: resuming upload", "file", f.remote, "from", from, "size", f.size)
	}
	n, err := w.ReadFrom(&ctxReader{ctx: ctx, r: src})
	u.sent += n
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.remote, err)
	}
	fi, err := c.Stat(dst)
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.remote, err)
	}
	if fi.Size() != f.size {
		// A partial file that was not a prefix (another writer): start over.
		_ = c.Remove(dst)
		return fmt.Errorf("upload %s: the server holds %d bytes, want %d", f.remote, fi.Size(), f.size)
	}
	return nil
}

// rename replaces f's stable name with its upload, atomically where the
// server can. A rename done before the connection dropped is recognised
// (no upload left, the stable file has its size) and not an error.
func (u *upload) rename(f file) error {
	c := u.sftp
	from, dst := u.p.remote(tempName(f)), u.p.remote(f.remote)
	if _, err := c.Stat(from); errors.Is(err, os.ErrNotExist) {
		if fi, err := c.Stat(dst); err == nil && fi.Size() == f.size {
			return nil
		}
	}
	if _, ok := c.HasExtension("posix-rename@openssh.com"); ok {
		if err := c.PosixRename(from, dst); err != nil {
			return fmt.Errorf("rename %s to %s: %w", from, dst, err)
		}
		return nil
	}
	// Plain SFTP rename fails over an existing file: remove it first (a
	// moment without the file, never a partial one).
	if err := c.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", dst, err)
	}
	if err := c.Rename(from, dst); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, dst, err)
	}
	return nil
}

// keep is the remote paths of this run's files, under their stable and
// their temporary names (a file renamed last is still uploaded while its
// format is tidied).
func (u *upload) keep(sets []rendered) map[string]bool {
	keep := map[string]bool{}
	for _, set := range sets {
		for _, f := range set.files {
			keep[u.p.remote(f.remote)] = true
			keep[u.p.remote(tempName(f))] = true
		}
	}
	return keep
}

// tidy removes the files of format in its remote folder that are not in
// keep: shards the new set does not have and temporary files of
// interrupted runs. Other names in the folder are left alone.
func (u *upload) tidy(format feed.Format, keep map[string]bool) error {
	dir := path.Dir(u.p.remote(string(format)))
	entries, err := u.sftp.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		name := path.Join(dir, e.Name())
		if keep[name] || e.IsDir() || !stale([]feed.Format{format}, e.Name()) {
			continue
		}
		if u.p.refuseRemove != nil {
			if err := u.p.refuseRemove(name); err != nil {
				return fmt.Errorf("remove %s: %w", name, err)
			}
		}
		if err := u.sftp.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		u.log.Info("sftp: removed stale file", "file", name)
	}
	return nil
}

// stale reports whether base is a shard or a temporary file of one of
// formats (the run's own files are kept by the caller).
//
// Any name may be in the folder (others write there too), so a name that
// only looks like a temporary file (".x.part", no hash) is not ours and
// is left alone rather than cut at a dot that is not there.
func stale(formats []feed.Format, base string) bool {
	if t, ok := strings.CutPrefix(base, "."); ok && strings.HasSuffix(t, ".part") {
		t = strings.TrimSuffix(t, ".part")
		i := strings.LastIndexByte(t, '.')
		if i < 0 || !isTempSum(t[i+1:]) {
			return false
		}
		base = t[:i]
	}
	for _, f := range formats {
		if isShardOf(f, base) || (f == feed.FormatACP && base == path.Base(feed.FileACPMetadata)) {
			return true
		}
	}
	return false
}

// isTempSum reports whether s is the hash part of tempName: 16 lowercase
// hex digits.
func isTempSum(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ctxReader stops an upload when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (p *Pusher) logger() *slog.Logger {
	l := p.Log
	if l == nil {
		l = slog.Default()
	}
	return l.With("component", "feed_push", "target", Target, "server", p.Addr)
}

func (p *Pusher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Addr joins a host and port for Pusher.Addr.
func Addr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
