// usnet hook tests — a Go program making raw system calls (Go's runtime
// issues its own SYSCALL instructions, not libc's): `goprobe N` makes N
// getppid calls with syscall.RawSyscall from several goroutines.  It links
// cgo so that the binary is dynamic and LD_PRELOAD applies.
//
// `goprobe deep G R`: G goroutines, R rounds each, recurse 400 levels and make
// a raw call at every level, so that many calls happen with the goroutine's
// small stack (a few KiB) almost full; every frame keeps a canary that must
// survive.  The hook must not run its handler on that stack.
package main

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// dive recurses to depth, one raw getppid per level, and checks its frame.
//
//go:noinline
func dive(depth int, ppid uintptr) bool {
	canary := [4]uintptr{uintptr(depth), ppid, ^uintptr(depth), 0x5a5a5a5a}
	got, _, errno := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	if errno != 0 || got != ppid {
		return false
	}
	ok := depth == 0 || dive(depth-1, ppid)
	return ok && canary == [4]uintptr{uintptr(depth), ppid, ^uintptr(depth), 0x5a5a5a5a}
}

func deep(goroutines, rounds int) {
	ppid := uintptr(os.Getppid())
	var wg sync.WaitGroup
	bad := make(chan int, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if !dive(400, ppid) {
					bad <- 1
					return
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		fmt.Fprintln(os.Stderr, "goprobe: a raw call or a stack canary failed")
		os.Exit(1)
	}
	fmt.Println("ok")
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "deep" {
		g, err1 := strconv.Atoi(os.Args[2])
		r, err2 := strconv.Atoi(os.Args[3])
		if err1 != nil || err2 != nil {
			fmt.Fprintln(os.Stderr, "usage: goprobe deep GOROUTINES ROUNDS")
			os.Exit(2)
		}
		deep(g, r)
		return
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage: goprobe N")
		os.Exit(2)
	}
	const workers = 4
	var wg sync.WaitGroup
	bad := make(chan int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		count := n / workers
		if w == 0 {
			count += n % workers
		}
		go func(count int) {
			defer wg.Done()
			for i := 0; i < count; i++ {
				ppid, _, errno := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
				if errno != 0 || int(ppid) != os.Getppid() {
					bad <- 1
					return
				}
			}
		}(count)
	}
	wg.Wait()
	if len(bad) > 0 {
		fmt.Fprintln(os.Stderr, "goprobe: getppid failed")
		os.Exit(1)
	}
	fmt.Println("ok")
}
