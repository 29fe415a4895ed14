//! The tag keys of the sample's events: the DCB consistency boundaries are built from these.

/// A student, on every event about one.
pub const STUDENT_ID: &str = "studentId";
/// A student's email, lower-cased, in plain text: the unique-username boundary of stores
/// written before registrations were tagged [`STUDENT_EMAIL_HASH`]. No new event carries it
/// (a tag is not sealed, so it would outlive the student's erasure), but the uniqueness
/// condition still matches it, so that old registrations keep their address taken.
pub const STUDENT_EMAIL: &str = "studentEmail";
/// The lowercase hex SHA-256 of a student's lower-cased email: the unique-username boundary.
/// It survives the student's erasure, so an address stays taken; whoever knows an address can
/// still test whether it was registered (hash it and query the tag).
pub const STUDENT_EMAIL_HASH: &str = "studentEmailHash";
/// A course, on every event about one.
pub const COURSE_ID: &str = "courseId";
/// An invoice's number.
pub const INVOICE_NUMBER: &str = "invoiceNumber";
/// The customer an invoice is for.
pub const CUSTOMER_ID: &str = "customerId";
/// An exam registration token: the whole token registry is a query on this tag.
pub const EXAM_TOKEN: &str = "examToken";
/// The exam a token registers for.
pub const EXAM_ID: &str = "examId";
/// A course book.
pub const BOOK_ID: &str = "bookId";
/// A cart order of course books.
pub const ORDER_ID: &str = "orderId";
/// An announcement.
pub const ANNOUNCEMENT_ID: &str = "announcementId";
/// A client's idempotency token: the prevent-duplication boundary.
pub const IDEMPOTENCY: &str = "idempotency";
