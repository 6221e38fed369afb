using System.CommandLine;
using Spectre.Console;

namespace CoeffTune.Cli;

/// <summary>Shared plumbing of the commands: parsing errors as one line, failures as one line.</summary>
public static class Cli
{
    public static int Run(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"error: {parsed.Errors[0].Message} (see --help)");
            return 2;
        }
        try
        {
            // Expected failures print as one line (below), not as System.CommandLine's stack trace.
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or InvalidOperationException
                                       or UnauthorizedAccessException or FormatException or CoeffTune.Assets.AssetUnavailableException
                                       or CoeffTune.Training.TrainingDivergedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>Writes text to a file atomically: a temporary file beside it, then a rename.</summary>
    public static void WriteAtomic(string path, string text) => CoeffTune.IO.AtomicFile.WriteAllText(path, text);

    public static string Escape(string s) => Markup.Escape(s);

    /// <summary>JSON output keeps non-ASCII text readable (it is still valid, escaped JSON where it must be).</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
