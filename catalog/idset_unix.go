//go:build unix

package catalog

import (
	"syscall"
	"unsafe"
)

// allocSlots maps zeroed memory outside the Go heap. The id set is the one
// structure of the pipeline that grows with the catalog; on the heap the
// garbage collector's goal would count it twice (GOGC=100), so at a million
// variants it would cost ~64 MB of RSS instead of 16.
func allocSlots(n int) []uint64 {
	b, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]uint64, n) // the heap still works, only bigger
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
}

// freeSlots returns memory from allocSlots; heap slices are left to the GC.
func freeSlots(s []uint64) {
	if len(s) == 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*8)
	_ = syscall.Munmap(b) // fails harmlessly (EINVAL) for a heap fallback slice
}
