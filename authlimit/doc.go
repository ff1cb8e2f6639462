// Package authlimit slows and then locks out repeated failed logins, per
// key (a source IP, a username, ...), without blocking any goroutine.
//
// Each failed attempt under a key opens a back-off window that doubles with
// every further failure (Backoff, 2*Backoff, 4*Backoff, ...); an attempt
// made inside the window is refused without checking its credentials and
// counts as one more failure, so a flood reaches the lock at once while a
// person mistyping a password waits a second. After MaxFailures failures in
// a row the key is locked for LockFor: every attempt is refused and none is
// counted, so the lock ends when it says it will. A success forgets the key;
// an idle key is forgotten LockFor after its last failure; the table never
// holds more than MaxKeys keys.
//
// It imports nothing of cloak's, so the SIP registrar and the HTTP API's
// login share it. Time comes from Config.Now, so tests need no sleeps.
package authlimit
