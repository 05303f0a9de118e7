package jobs

import (
	"context"
	"sync/atomic"
	"time"
)

// Every remote operation is bounded, so an instance that stops answering
// can never hold a job (and its bill) in one state: short operations get the
// SSH grace period, transfers are cancelled when they stall for that long,
// and the setup script and the final download get their own ceilings.

// shortOp bounds a quick remote operation (status, tail, GPU sample).
func (r *runner) shortOp(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg().SSHGrace)
}

// stallGuard returns a context that is cancelled when touch has not been
// called for d, and the touch function to call on progress.
func stallGuard(ctx context.Context, d time.Duration) (context.Context, func(), context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	touch := func() { last.Store(time.Now().UnixNano()) }
	go func() {
		t := time.NewTicker(max(d/8, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if now.Sub(time.Unix(0, last.Load())) > d {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, touch, cancel
}
