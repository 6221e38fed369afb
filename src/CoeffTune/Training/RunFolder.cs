namespace CoeffTune.Training;

/// <summary>
/// Exclusive use of a run folder: an advisory lock on <c>.lock</c> inside it, held until disposed, so a second
/// run on the same folder is refused instead of interleaving its files with the first's. Taking the lock also
/// removes what an interrupted earlier run left behind (the temporary files and folders of <see cref="IO.AtomicFile"/>).
/// </summary>
public sealed class RunFolder : IDisposable
{
    public const string LockName = ".lock";
    private readonly FileStream lockFile;
    private readonly bool created;
    public string Path { get; }

    private RunFolder(string path, FileStream lockFile, bool created)
    {
        Path = path;
        this.lockFile = lockFile;
        this.created = created;
    }

    public static RunFolder Acquire(string path, TextWriter? log = null)
    {
        bool created = !Directory.Exists(path);
        Directory.CreateDirectory(path);
        FileStream f;
        try
        {
            f = new FileStream(System.IO.Path.Combine(path, LockName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new IOException($"{path} is in use by another coefftune run; wait for it to finish or choose another run folder");
        }
        var folder = new RunFolder(path, f, created);
        int removed = 0;
        foreach (var tmp in Directory.EnumerateFiles(path, IO.AtomicFile.TempFilePattern, SearchOption.AllDirectories).ToList())
        {
            File.Delete(tmp);
            removed++;
        }
        foreach (var dir in Directory.EnumerateDirectories(path, IO.AtomicFile.TempDirectoryPattern, SearchOption.AllDirectories).ToList())
        {
            Directory.Delete(dir, recursive: true);
            removed++;
        }
        if (removed > 0) log?.WriteLine($"removed {removed} temporary file(s) an interrupted run left in {path}");
        return folder;
    }

    /// <summary>Releases the lock; a folder this run created and left empty (it failed before writing) is removed.</summary>
    public void Dispose()
    {
        lockFile.Dispose();
        if (!created) return;
        try
        {
            if (Directory.EnumerateFileSystemEntries(Path).All(e => System.IO.Path.GetFileName(e) == LockName)) Directory.Delete(Path, recursive: true);
        }
        catch (IOException) { }
    }
}
