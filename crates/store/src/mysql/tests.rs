use super::*;

#[test]
fn chunks_are_powers_of_two_and_cover_everything() {
    let items = vec![10usize; 1000];
    let sizes = chunk_sizes(&items, |x| *x, MAX_BYTES_PER_STATEMENT);
    assert_eq!(sizes.iter().sum::<usize>(), 1000);
    assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_ROWS_PER_STATEMENT));
    let big = vec![3 << 20; 5];
    assert_eq!(chunk_sizes(&big, |x| *x, MAX_BYTES_PER_STATEMENT), vec![1, 1, 1, 1, 1]);
    assert!(chunk_sizes(&Vec::<usize>::new(), |x| *x, MAX_BYTES_PER_STATEMENT).is_empty());
}
