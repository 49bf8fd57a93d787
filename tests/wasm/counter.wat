;; A counter: each message adds its first byte to a total; a request gets
;; the total back as 8 little-endian bytes.
(module
  (import "airssys" "reply" (func $reply (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $total (mut i64) (i64.const 0))
  ;; Messages are written at offset 1024; the total is staged at 16.
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (if (i32.gt_u (local.get $len) (i32.const 0))
      (then
        (global.set $total
          (i64.add (global.get $total)
                   (i64.extend_i32_u (i32.load8_u (local.get $ptr)))))))
    (i64.store (i32.const 16) (global.get $total))
    (drop (call $reply (i32.const 16) (i32.const 8)))
    (i32.const 0)))
