//go:build !unix

package csv

import (
	"context"
	"os"
)

// lockFile is a no-op where flock does not exist; the in-process mutex still
// serialises writers, and one process per orders file is the documented rule.
func lockFile(ctx context.Context, f *os.File, exclusive bool) (unlock func(), err error) {
	return func() {}, ctx.Err()
}
