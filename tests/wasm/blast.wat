;; Passes out as many bytes as it is asked to: a message is
;; [op: u8][len: u32, little-endian]. Op 0 replies with `len` bytes (from
;; address 0); op 1 sends `len` bytes to the actor registered as "sink" and
;; answers a request with send's status (i32).
(module
  (import "airssys" "send" (func $send (param i32 i32 i32 i32) (result i32)))
  (import "airssys" "reply" (func $reply (param i32 i32) (result i32)))
  ;; Two pages: up to 128 KiB can be passed out in bounds.
  (memory (export "memory") 2)
  (data (i32.const 8) "sink")
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (local $n i32)
    (local.set $n (i32.load offset=1 align=1 (local.get $ptr)))
    (if (i32.eqz (i32.load8_u (local.get $ptr)))
      (then (drop (call $reply (i32.const 0) (local.get $n))))
      (else
        (i32.store (i32.const 16)
          (call $send (i32.const 8) (i32.const 4) (i32.const 0) (local.get $n)))
        (drop (call $reply (i32.const 16) (i32.const 4)))))
    (i32.const 0)))
