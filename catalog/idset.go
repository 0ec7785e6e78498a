package catalog

// idSet is a set of 64-bit id hashes with open addressing. A Go map of
// uint64 costs ~40 bytes per id once bucket overhead and growth are counted;
// this costs 8–16, and holds no pointers, so the garbage collector never
// scans it. It is the one structure of the pipeline that grows with the
// catalog.
type idSet struct {
	slots []uint64 // 0 marks an empty slot
	n     int
}

// add inserts h and reports whether it was new.
func (s *idSet) add(h uint64) bool {
	if h == 0 {
		h = 1 // 0 marks empty slots
	}
	if s.n >= len(s.slots)*3/4 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return true
		case h:
			return false
		}
	}
}

func (s *idSet) grow() {
	old := s.slots
	size := max(len(old)*2, 1<<14)
	s.slots, s.n = make([]uint64, size), 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}
