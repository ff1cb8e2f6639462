//go:build !linux

package main

import (
	"errors"
	"net/netip"
)

func runEpoll(netip.Addr, int, int, int) (func(), error) {
	return nil, errors.New("-io epoll needs linux")
}
