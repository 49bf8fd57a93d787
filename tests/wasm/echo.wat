;; Echo: a request is answered with its own bytes.
(module
  (import "airssys" "reply" (func $reply (param i32 i32) (result i32)))
  ;; Two pages, so any message up to the default 64 KiB limit fits at 1024.
  (memory (export "memory") 2)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $reply (local.get $ptr) (local.get $len)))
    (i32.const 0)))
