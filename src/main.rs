fn main() {
    println!("rcmd");
}
