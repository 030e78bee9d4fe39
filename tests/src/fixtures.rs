//! Fixtures to seed a local AWS stack (filled in by the end-to-end plan fixtures).
