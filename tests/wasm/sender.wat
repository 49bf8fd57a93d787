;; Sends on command: a message is [name length: u8][name][payload]. The
;; guest sends the payload to the actor registered under the name and
;; answers a request with send's status (i32, little-endian), so the host
;; can see SENT, DENIED, UNKNOWN_ADDRESS or REFUSED.
(module
  (import "airssys" "send" (func $send (param i32 i32 i32 i32) (result i32)))
  (import "airssys" "reply" (func $reply (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (local $name i32)
    (local $name_len i32)
    (local.set $name (i32.add (local.get $ptr) (i32.const 1)))
    (local.set $name_len (i32.load8_u (local.get $ptr)))
    (i32.store (i32.const 16)
      (call $send
        (local.get $name)
        (local.get $name_len)
        (i32.add (local.get $name) (local.get $name_len))
        (i32.sub (i32.sub (local.get $len) (i32.const 1)) (local.get $name_len))))
    (drop (call $reply (i32.const 16) (i32.const 4)))
    (i32.const 0)))
