// Package atomicfile replaces a file so that a reader, or a crash, only ever
// sees the old or the new content in full: the new bytes go to a temporary
// file in the same folder, which is synced, optionally checked, renamed over
// the target, and the folder is synced so the rename itself is durable.
package atomicfile
