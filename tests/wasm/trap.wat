;; A counter like counter.wat (each message adds its first byte to a total;
;; a request gets the total as 8 little-endian bytes), except that a
;; message whose first byte is 255 executes `unreachable`.
(module
  (import "airssys" "reply" (func $reply (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $total (mut i64) (i64.const 0))
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (local $byte i32)
    (local.set $byte (i32.load8_u (local.get $ptr)))
    (if (i32.eq (local.get $byte) (i32.const 255))
      (then unreachable))
    (global.set $total
      (i64.add (global.get $total) (i64.extend_i32_u (local.get $byte))))
    (i64.store (i32.const 16) (global.get $total))
    (drop (call $reply (i32.const 16) (i32.const 8)))
    (i32.const 0)))
