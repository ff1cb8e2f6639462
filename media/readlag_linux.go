package media

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// lagEvery is how often a poll worker samples its read lag: at most one
// ioctl(2) per worker per lagEvery, whatever the packet rate.
const lagEvery = 10 * time.Millisecond

// Read lag is how late a poll worker handles a datagram: the time from the
// kernel's receive timestamp of the datagram to the worker's read of it.
// It includes the wake-up of the worker and the sockets served before it
// in its batch, so it is the queueing delay the relay adds, and it grows
// without bound when the workers cannot keep up (issue 20's 2 s queues).
//
// Measured, not per packet, but sampled: at most every lagEvery a worker
// asks the kernel for the timestamp of the last datagram it read on the
// last socket of a batch (the one that waited longest) with
// ioctl(SIOCGSTAMPNS), and compares it with the wall clock. The recvfrom
// path is unchanged (no SO_TIMESTAMPNS control messages to build or
// parse). The ioctl marks the socket for timestamps (SOCK_TIMESTAMP),
// which is done once when the worker adds a socket; the kernel then
// stamps received datagrams (one clock read per datagram, in the kernel)
// and each read stores the stamp on the socket.

// enableReadStamp marks socket fd for receive timestamps. The first
// SIOCGSTAMPNS on a socket turns them on and fails with ENOENT (no
// datagram stamped yet), which is expected.
func enableReadStamp(fd int) {
	var ts unix.Timespec
	_, _, _ = unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGSTAMPNS, uintptr(unsafe.Pointer(&ts)))
}

// readAge returns how long ago the kernel received the last datagram read
// on fd (SIOCGSTAMPNS against the wall clock): the time it waited in the
// socket's receive queue, since it was read just now. ok is false when
// the socket has no stamp yet.
func readAge(fd int) (age int64, ok bool) {
	var ts unix.Timespec
	_, _, errno := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGSTAMPNS, uintptr(unsafe.Pointer(&ts)))
	if errno != 0 {
		return 0, false
	}
	return max(time.Now().UnixNano()-ts.Nano(), 0), true // < 0: the wall clock stepped back
}

// sampleLag takes the read age of the last datagram read on fd (readAge)
// and folds it into w.lagMax. It returns false when the socket has no
// stamp yet (try again next batch).
func (w *pollWorker) sampleLag(fd int) (lag int64, ok bool) {
	if lag, ok = readAge(fd); !ok {
		return 0, false
	}
	for {
		cur := w.lagMax.Load()
		if lag <= cur || w.lagMax.CompareAndSwap(cur, lag) {
			return lag, true
		}
	}
}

// updateShed turns the worker's shedding on when a sampled read lag is
// beyond bound (the sampled leg's staleness bound) and off when one is
// under half of it (stale.go, "Queue sojourn").
func (w *pollWorker) updateShed(lag int64, bound time.Duration) {
	switch {
	case !w.shedding && bound > 0 && lag > int64(bound):
		w.shedding = true
		shedWorkers.Add(1)
		w.sheds.Add(1)
	case w.shedding && (bound <= 0 || lag < int64(bound)/2):
		w.shedding = false
		shedWorkers.Add(-1)
	}
}

// TakeLag returns the worst read lag the poll workers sampled since the
// previous call (0 when none was sampled: no traffic) and starts a new
// window; a worker whose batch has been under way longer (held up by a
// Handler) counts with that batch's length so far, since every socket it
// serves waits at least as long. It is meant for one reader, the overload
// monitor's sampler; it takes no lock. A wall-clock step forward shows as
// one large sample.
func (p *Poller) TakeLag() time.Duration {
	var worst int64
	now := nanotime()
	for _, w := range p.workers {
		worst = max(worst, w.lagMax.Swap(0))
		if since := w.busySince.Load(); since != 0 {
			worst = max(worst, now-since)
		}
	}
	return time.Duration(worst)
}
