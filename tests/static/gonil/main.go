// A Go program for tests/static, built with CGO_ENABLED=0: nil-pointer
// dereferences that panic and are recovered (Go's SIGSEGV handler, which
// usnet must leave to it), printed the same with and without usnet.
package main

import "fmt"

type box struct{ v int }

func read(b *box) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprint("recovered: ", r)
		}
	}()
	return fmt.Sprint(b.v)
}

func main() {
	for i := 0; i < 3; i++ {
		fmt.Println(read(nil))
	}
	fmt.Println(read(&box{7}))
}
