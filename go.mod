module github.com/swrap/swrap

go 1.26
