/// The version of the profile file format this build reads (`format: 1` in profile.yaml).
public enum ProfileFormat {
    public static let version = 1
}
