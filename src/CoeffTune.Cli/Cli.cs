using System.CommandLine;
using Spectre.Console;

namespace CoeffTune.Cli;

/// <summary>Shared plumbing of the commands: parsing errors as one line, failures as one line.</summary>
public static class Cli
{
    /// <summary>Accepted anywhere on the command line: failures print their full trace, for bug reports.</summary>
    public const string VerboseFlag = "--verbose";

    public static int Run(RootCommand root, string[] args)
    {
        bool verbose = args.Contains(VerboseFlag);
        var parsed = root.Parse(args.Where(a => a != VerboseFlag).ToArray());
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"error: {parsed.Errors[0].Message} (see --help)");
            return 2;
        }
        try
        {
            // Failures print as one line (below), not as System.CommandLine's stack trace.
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {OneLine(e)}{(e is CoeffTune.Checkpoints.MissingHeadCountException ? " (--heads N)" : "")}");
            bool expected = e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException or FormatException
                or CoeffTune.Assets.AssetUnavailableException or CoeffTune.Training.TrainingDivergedException;
            if (verbose) Console.Error.WriteLine(e.ToString());
            else if (!expected) Console.Error.WriteLine($"(an unexpected {e.GetType().Name}; run again with {VerboseFlag} for the trace to report)");
            return 1;
        }
    }

    /// <summary>
    /// An exception as one line: the first line of its message (native libraries append frame dumps), an
    /// argument's actual value where .NET appends it on lines of its own, and nothing else.
    /// </summary>
    public static string OneLine(Exception e)
    {
        var message = e is ArgumentException a && a.ParamName is { } p ? a.Message.Replace($" (Parameter '{p}')", "") : e.Message;
        var first = message.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? e.GetType().Name;
        if (e is ArgumentOutOfRangeException { ActualValue: { } v }) first += $" (got {v})";
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) return OneLine(inner);
        return first;
    }

    /// <summary>Writes text to a file atomically: a temporary file beside it, then a rename.</summary>
    public static void WriteAtomic(string path, string text) => CoeffTune.IO.AtomicFile.WriteAllText(path, text);

    public static string Escape(string s) => Markup.Escape(s);

    /// <summary>JSON output keeps non-ASCII text readable (it is still valid, escaped JSON where it must be).</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
