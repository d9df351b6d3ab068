/// The release this build is. One constant, bumped together with the CHANGELOG heading when a
/// release is cut: a tarball or Debian source build has no git history to describe, so the
/// version cannot come from `git describe`.
public enum GatehouseVersion {
    public static let current = "0.9.0-dev"
}
