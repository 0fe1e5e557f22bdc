// usnet hook tests — a Go program making raw system calls (Go's runtime
// issues its own SYSCALL instructions, not libc's): `goprobe N` makes N
// getppid calls with syscall.RawSyscall from several goroutines.  It links
// cgo so that the binary is dynamic and LD_PRELOAD applies.
package main

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

func main() {
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
