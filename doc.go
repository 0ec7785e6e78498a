// Package bridge is the domain of the bridge: the vocabulary every other package
// speaks (money, products, catalog snapshots, orders) and the small interfaces
// that adapters and storage implement. It does no I/O and imports nothing of the
// project, so that front doors, engines, adapters and storage can all depend on
// it without depending on each other.
package bridge
